#include "engine/gguf/tensor_convert.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/quant/quant_type.h"

namespace lumen::engine {

float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

uint16_t FloatToHalf(float f) {
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::vector<uint8_t> QuantizeQ8_0(std::span<const float> src) {
  const size_t blocks = src.size() / kQ8_0BlockSize;
  std::vector<uint8_t> out(blocks * sizeof(BlockQ8_0));
  for (size_t b = 0; b < blocks; ++b) {
    const float* x = src.data() + b * kQ8_0BlockSize;
    float amax = 0.0f;
    for (int i = 0; i < kQ8_0BlockSize; ++i)
      amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0 block;
    block.scale = FloatToHalf(d);
    for (int i = 0; i < kQ8_0BlockSize; ++i) {
      block.q[i] = static_cast<int8_t>(std::lround(x[i] * id));
    }
    std::memcpy(out.data() + b * sizeof(BlockQ8_0), &block, sizeof(block));
  }
  return out;
}

absl::Status DecodeToFloat(GgmlType type, const uint8_t* src, int64_t n,
                           float* dst) {
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return absl::OkStatus();
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = HalfToFloat(h);
      }
      return absl::OkStatus();
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = Bf16ToFloat(h);
      }
      return absl::OkStatus();
    default:
      break;
  }
  const quant::QuantType* q = quant::FindQuantType(type);
  if (q == nullptr || n % q->block_elems != 0) {
    return absl::UnimplementedError(
        absl::StrCat("cannot decode ggml type ", GgmlTypeName(type)));
  }
  q->dequantize_row(src, dst, n);
  return absl::OkStatus();
}

}  // namespace lumen::engine
