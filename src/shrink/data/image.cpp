#include "shrink/data/image.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <jerror.h>

#include "shrink/core/error.h"

namespace fs = std::filesystem;

namespace shrink::data {
namespace {

bool is_jpeg(const std::string& b) {
  return b.size() >= 3 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8 && uint8_t(b[2]) == 0xFF;
}
bool is_png(const std::string& b) { return b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0; }

// libjpeg reports errors through error_exit, which must not return: it jumps back
// to decode_jpeg with the library's message (the documented setjmp pattern). Only
// plain data lives between setjmp and longjmp.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool ended_early;  // libjpeg padded a stream that stopped before the image did
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (extraneous bytes, say) are not errors, except the end of the data
// before the end of the image, which libjpeg would pad with gray: a truncated file,
// reported at once (a few bytes can declare a huge image; it is not decoded).
void jpeg_warning(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    err->ended_early = true;
    std::longjmp(err->jump, 1);
  }
}

Image decode_jpeg(const std::string& bytes, const std::string& path, int64_t min_side) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  err.mgr.emit_message = jpeg_warning;
  err.message[0] = 0;
  err.ended_early = false;
  Image img;
  JSAMPROW row = nullptr;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    SHRINK_CHECK(!err.ended_early, path, ": truncated JPEG (the data ends before the image does)");
    fail(path, ": corrupt or truncated JPEG (", err.message, ")");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    fail(path, ": CMYK JPEG is not supported (expected grayscale or color; convert it to RGB)");
  }
  if (static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height > kMaxImagePixels) {
    uint64_t w = cinfo.image_width, h = cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    fail(path, ": JPEG of ", w, "x", h, " pixels is over the limit of ", kMaxImagePixels,
         " (PIL's decompression-bomb limit)");
  }
  // Huffman coding spends at least one bit on every 8x8 block of the first
  // component: data shorter than that cannot hold the image it declares (a few
  // bytes claiming a huge image would otherwise be decoded as gray, at length).
  if (!cinfo.arith_code) {
    uint64_t blocks = static_cast<uint64_t>(cinfo.comp_info[0].width_in_blocks) * cinfo.comp_info[0].height_in_blocks;
    if (static_cast<uint64_t>(bytes.size()) * 8 < blocks) {
      uint64_t w = cinfo.image_width, h = cinfo.image_height;
      jpeg_destroy_decompress(&cinfo);
      fail(path, ": truncated JPEG (", w, "x", h, " pixels need at least ", (blocks + 7) / 8, " bytes of data, the file has ",
           bytes.size(), ")");
    }
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (min_side > 0) {  // the largest DCT reduction that keeps the shorter side >= min_side
    JDIMENSION shorter = std::min(cinfo.image_width, cinfo.image_height);
    for (unsigned denom : {8u, 4u, 2u})
      if ((shorter + denom - 1) / denom >= static_cast<JDIMENSION>(min_side)) {
        cinfo.scale_num = 1;
        cinfo.scale_denom = denom;
        break;
      }
  }
  jpeg_start_decompress(&cinfo);
  img.height = cinfo.output_height;
  img.width = cinfo.output_width;
  img.channels = cinfo.output_components;
  img.pixels.resize(static_cast<size_t>(img.height * img.width * img.channels));
  while (cinfo.output_scanline < cinfo.output_height) {
    row = img.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * img.width * img.channels;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return img;
}

Image decode_png(const std::string& bytes, const std::string& path) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  SHRINK_CHECK(png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()), path, ": corrupt PNG (",
               png.message, ")");
  // Gray stays gray, everything else becomes 8-bit RGB (palette expanded, 16-bit
  // reduced, alpha dropped against black as composited by libpng).
  bool gray = (png.format & PNG_FORMAT_FLAG_COLOR) == 0;
  png.format = gray ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  Image img;
  img.height = png.height;
  img.width = png.width;
  img.channels = gray ? 1 : 3;
  if (img.height * img.width > static_cast<int64_t>(kMaxImagePixels)) {
    png_image_free(&png);
    fail(path, ": PNG of ", img.width, "x", img.height, " pixels is over the limit of ", kMaxImagePixels,
         " (PIL's decompression-bomb limit)");
  }
  img.pixels.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, img.pixels.data(), 0, nullptr)) {
    std::string why = png.message;
    png_image_free(&png);
    fail(path, ": corrupt or truncated PNG (", why, ")");
  }
  return img;
}

}  // namespace

Channels parse_channels(const std::string& s) {
  if (s.empty() || s == "any") return Channels::kAny;
  if (s == "rgb") return Channels::kRgb;
  if (s == "bgr") return Channels::kBgr;
  if (s == "gray") return Channels::kGray;
  fail("--channels: '", s, "' is not one of rgb, bgr, gray");
}

const char* channels_name(Channels c) {
  switch (c) {
    case Channels::kRgb: return "rgb";
    case Channels::kBgr: return "bgr";
    case Channels::kGray: return "gray";
    default: return "";
  }
}

bool is_image_file(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

Image decode_image(const std::string& bytes, const std::string& path, int64_t min_side) {
  if (is_jpeg(bytes)) return decode_jpeg(bytes, path, min_side);
  if (is_png(bytes)) return decode_png(bytes, path);
  fail(path, ": not a JPEG or PNG file (", bytes.size() < 8 ? "too short" : "unknown magic bytes", ")");
}

Image read_image(const std::string& path, int64_t min_side) {
  std::ifstream in(path, std::ios::binary);
  SHRINK_CHECK(in, path, ": cannot open image file");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decode_image(bytes, path, min_side);
}

void convert_channels(Image& img, Channels to) {
  if (to == Channels::kAny) return;
  const int64_t n = img.height * img.width;
  const int64_t want = to == Channels::kGray ? 1 : 3;
  if (img.channels == 1 && want == 3) {
    std::vector<uint8_t> out(static_cast<size_t>(n * 3));
    for (int64_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = img.pixels[i];
    img.pixels.swap(out);
  } else if (img.channels == 3 && want == 1) {
    std::vector<uint8_t> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {  // PIL's L = R*299/1000 + G*587/1000 + B*114/1000, rounded
      const uint8_t* p = &img.pixels[3 * i];
      out[i] = static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
    }
    img.pixels.swap(out);
  } else if (img.channels == 3 && to == Channels::kBgr) {
    for (int64_t i = 0; i < n; ++i) std::swap(img.pixels[3 * i], img.pixels[3 * i + 2]);
  }
  img.channels = want;
}

namespace {

// The taps of a 1-D antialiased bilinear resize from `in` to `out` samples, for the
// outputs [first, first + n): the triangle filter widened by the downscale factor,
// normalised per output (the weights ATen's _upsample_bilinear2d_aa and PIL's
// BILINEAR use: center = scale (i + 0.5), support = max(scale, 1)).
struct Taps {
  std::vector<int64_t> start, count;
  std::vector<float> weights;  // n x width, zero-padded
  int64_t width = 0;
};

Taps resize_taps(int64_t in, int64_t out, int64_t first, int64_t n) {
  Taps t;
  const double scale = static_cast<double>(in) / out;
  const double support = scale >= 1.0 ? scale : 1.0, invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  t.width = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.start.resize(n);
  t.count.resize(n);
  t.weights.assign(static_cast<size_t>(n * t.width), 0.0f);
  for (int64_t k = 0; k < n; ++k) {
    const double center = scale * (first + k + 0.5);
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
    double total = 0;
    std::vector<double> w(static_cast<size_t>(std::max<int64_t>(hi - lo, 0)));
    for (int64_t j = lo; j < hi; ++j) {
      double x = std::abs((j - center + 0.5) * invscale);
      w[j - lo] = x < 1.0 ? 1.0 - x : 0.0;
      total += w[j - lo];
    }
    t.start[k] = lo;
    t.count[k] = std::min<int64_t>(hi - lo, t.width);
    for (int64_t j = 0; j < t.count[k]; ++j) t.weights[k * t.width + j] = static_cast<float>(total > 0 ? w[j] / total : 0);
  }
  return t;
}

}  // namespace

void transform_to_chw(const Image& img, const Transform& t, std::mt19937_64* rng, uint8_t* out,
                      const std::string& path) {
  const int64_t c = img.channels;
  int64_t h = img.height, w = img.width;
  // torchvision: the shorter side becomes `resize`, the longer side int(resize * long / short).
  if (t.resize > 0 && std::min(h, w) != t.resize) {
    int64_t nh = h <= w ? t.resize : static_cast<int64_t>(static_cast<double>(t.resize) * h / w);
    int64_t nw = h <= w ? static_cast<int64_t>(static_cast<double>(t.resize) * w / h) : t.resize;
    h = nh;
    w = nw;
  }
  const int64_t ch = t.crop_h > 0 ? t.crop_h : h, cw = t.crop_w > 0 ? t.crop_w : w;
  SHRINK_CHECK(ch <= h && cw <= w, path, ": image is ", w, "x", h, " after resizing, smaller than the ", cw, "x", ch,
               " crop (give --resize of at least the crop size)");
  int64_t top, left;
  if (t.random_crop && rng) {
    top = std::uniform_int_distribution<int64_t>(0, h - ch)(*rng);
    left = std::uniform_int_distribution<int64_t>(0, w - cw)(*rng);
  } else {  // torchvision's CenterCrop: int(round((h - ch) / 2)), Python's round (half to even)
    top = static_cast<int64_t>(std::nearbyint((h - ch) / 2.0));
    left = static_cast<int64_t>(std::nearbyint((w - cw) / 2.0));
  }
  const uint8_t* src = img.pixels.data();
  // Rounded to bytes as PIL does (+0.5 after clamping; values are >= 0 by then).
  auto to_byte = [](float v) { return static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, v)) + 0.5f); };
  if (h == img.height && w == img.width) {  // no resize: the crop as it is
    for (int64_t k = 0; k < c; ++k)
      for (int64_t y = 0; y < ch; ++y) {
        const uint8_t* row = src + ((top + y) * img.width + left) * c + k;
        uint8_t* o = out + (k * ch + y) * cw;
        for (int64_t x = 0; x < cw; ++x) o[t.flip ? cw - 1 - x : x] = row[x * c];
      }
    return;
  }
  // Separable: only the crop window of the resized image is computed (each output
  // pixel depends on its own taps alone, so this is exactly the crop of the full
  // resize). Columns first, over the source rows the window's rows read, into
  // channel planes [c][rows][cw]; then rows.
  Taps tx = resize_taps(img.width, w, left, cw), ty = resize_taps(img.height, h, top, ch);
  const int64_t row_lo = ty.start.front();
  int64_t row_hi = 0;
  for (int64_t i = 0; i < ch; ++i) row_hi = std::max(row_hi, ty.start[i] + ty.count[i]);
  const int64_t rows = row_hi - row_lo;
  std::vector<float> mid(static_cast<size_t>(c * rows * cw));
  for (int64_t y = row_lo; y < row_hi; ++y) {
    const uint8_t* row = src + y * img.width * c;
    for (int64_t x = 0; x < cw; ++x) {
      const float* wt = tx.weights.data() + x * tx.width;
      const uint8_t* p = row + tx.start[x] * c;
      const int64_t n = tx.count[x];
      if (c == 3) {
        float a0 = 0, a1 = 0, a2 = 0;
        for (int64_t j = 0; j < n; ++j) {
          a0 += wt[j] * p[3 * j];
          a1 += wt[j] * p[3 * j + 1];
          a2 += wt[j] * p[3 * j + 2];
        }
        mid[(0 * rows + y - row_lo) * cw + x] = a0;
        mid[(1 * rows + y - row_lo) * cw + x] = a1;
        mid[(2 * rows + y - row_lo) * cw + x] = a2;
      } else {
        for (int64_t k = 0; k < c; ++k) {
          float a = 0;
          for (int64_t j = 0; j < n; ++j) a += wt[j] * p[j * c + k];
          mid[(k * rows + y - row_lo) * cw + x] = a;
        }
      }
    }
  }
  std::vector<float> acc(static_cast<size_t>(cw));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < ch; ++y) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      const float* wt = ty.weights.data() + y * ty.width;
      for (int64_t j = 0; j < ty.count[y]; ++j) {
        const float* m = mid.data() + (k * rows + ty.start[y] + j - row_lo) * cw;
        const float wj = wt[j];
        for (int64_t x = 0; x < cw; ++x) acc[x] += wj * m[x];
      }
      uint8_t* o = out + (k * ch + y) * cw;
      if (t.flip) {
        for (int64_t x = 0; x < cw; ++x) o[cw - 1 - x] = to_byte(acc[x]);
      } else {
        for (int64_t x = 0; x < cw; ++x) o[x] = to_byte(acc[x]);
      }
    }
}

}  // namespace shrink::data
