#pragma once
// The packed weight types the engine serves, with their row codecs. Lookup
// by ggml type; the kernels for them live in quant_kernels.h. Any thread.

#include <cstdint>
#include <string>

#include "engine/gguf/ggml_type.h"

namespace lumen::engine::quant {

struct QuantType {
  GgmlType type;
  int block_elems;  // weights per block
  int block_bytes;
  // dst[n] <- n / block_elems blocks; n % block_elems == 0.
  void (*dequantize_row)(const uint8_t* src, float* dst, int64_t n);
  // n / block_elems blocks <- src[n].
  void (*quantize_row)(const float* src, uint8_t* dst, int64_t n);
};

// The packed type's codecs, or nullptr when the engine cannot serve `type`
// packed (F32/F16/BF16 are not packed types; they load as fp32).
const QuantType* FindQuantType(GgmlType type);

// Bytes of one row of `cols` weights (cols % block_elems == 0).
inline int64_t RowBytes(const QuantType& t, int64_t cols) {
  return cols / t.block_elems * t.block_bytes;
}

// "f32, f16, bf16, q4_0, ..." : every tensor type a model may hold.
std::string SupportedTypeList();

}  // namespace lumen::engine::quant
