#pragma once
// Conversions between GGUF tensor encodings and fp32: f16/bf16 scalars, Q8_0
// blocks (32 int8 with an fp16 scale, llama.cpp's layout) and row decoding
// of every type (packed types through engine/quant).

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/gguf/ggml_type.h"

namespace lumen::engine {

float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);  // round to nearest even
float Bf16ToFloat(uint16_t b);

constexpr int kQ8_0BlockSize = 32;
struct BlockQ8_0 {
  uint16_t scale;  // fp16
  int8_t q[kQ8_0BlockSize];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Quantizes `src` (length a multiple of 32) into Q8_0 blocks, as llama.cpp's
// quantize_row_q8_0_ref: scale = amax / 127, q = round(x / scale).
std::vector<uint8_t> QuantizeQ8_0(std::span<const float> src);

// Decodes `n` elements of a tensor of `type` starting at `src` into `dst`
// (`src` at a block boundary, n a whole number of blocks). Unimplemented for
// types outside quant::SupportedTypeList().
absl::Status DecodeToFloat(GgmlType type, const uint8_t* src, int64_t n,
                           float* dst);

}  // namespace lumen::engine
