// Image files decoded by maintained libraries (libjpeg-turbo's libjpeg API for JPEG,
// libpng's simplified API for PNG) and the preprocessing torchvision users write:
// resize of the shorter side (bilinear, antialiased), centre or random crop,
// horizontal flip, channel order.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace shrink::data {

// Channel order of decoded images: what the model takes.
enum class Channels { kAny, kRgb, kBgr, kGray };
Channels parse_channels(const std::string& s);  // "rgb", "bgr", "gray" ("" = any)
const char* channels_name(Channels c);

// An 8-bit image, height x width x channels (interleaved, as decoders write).
struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// The most pixels an image may declare: PIL's decompression-bomb error limit
// (2 x Image.MAX_IMAGE_PIXELS), so a few bytes cannot claim gigabytes.
constexpr uint64_t kMaxImagePixels = 178956970;

// The file's bytes decoded: JPEG or PNG, told apart by their magic bytes (not the
// name). `min_side` > 0 lets JPEG decode at a reduced DCT scale (1/2, 1/4, 1/8) as
// long as the shorter side stays >= min_side (what PIL's draft mode and OpenCV's
// IMREAD_REDUCED do; the resize that follows then has less to do). Errors name the
// file and what is wrong (truncated, corrupt, CMYK, not an image).
Image decode_image(const std::string& bytes, const std::string& path, int64_t min_side = 0);
Image read_image(const std::string& path, int64_t min_side = 0);

// Whether a file name has an image extension this decodes (.jpg .jpeg .png, any case).
bool is_image_file(const std::string& path);

// Converted to `to` channels: gray -> 3 channels repeats, 3 -> gray is ITU-R 601
// luma (as PIL's convert("L")), alpha is dropped, RGB <-> BGR swaps.
// `from_rgb_order`: the image's 3 channels are R, G, B (decoders' order).
void convert_channels(Image& img, Channels to);

struct Transform {
  int64_t resize = 0;        // shorter side to this (0: none)
  int64_t crop_h = 0, crop_w = 0;  // crop to this (0: none)
  bool random_crop = false;  // a uniformly placed crop instead of the centre one
  bool flip = false;         // mirror left-right
};

// Resize (antialiased bilinear: the weights of torchvision's Resize with antialias,
// ATen's _upsample_bilinear2d_aa and PIL's BILINEAR), then crop, then flip; writes
// channels x crop_h x crop_w planes (CHW) of rounded bytes to `out`. Only the crop
// window of the resized image is computed (separable, columns then rows). A crop
// larger than the image is an error naming `path`.
void transform_to_chw(const Image& img, const Transform& t, std::mt19937_64* rng, uint8_t* out,
                      const std::string& path);

}  // namespace shrink::data
