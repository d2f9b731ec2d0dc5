// libFuzzer target: bytes -> JPEG/PNG decoding (libjpeg-turbo, libpng) and the
// resize + crop that follows. Anything but a clean shrink::Error is a defect.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shrink/core/error.h"
#include "shrink/data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    shrink::data::Image img = shrink::data::decode_image(bytes, "fuzz.img", size % 2 ? 16 : 0);
    shrink::data::convert_channels(img, shrink::data::Channels::kRgb);
    shrink::data::Transform t;
    t.resize = 24;
    t.crop_h = t.crop_w = 20;
    std::vector<uint8_t> out(3 * 20 * 20);
    shrink::data::transform_to_chw(img, t, nullptr, out.data(), "fuzz.img");
  } catch (const shrink::Error&) {
  }
  return 0;
}
