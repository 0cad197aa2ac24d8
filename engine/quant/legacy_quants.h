#pragma once
// ggml's legacy block formats: 32 weights per block, one fp16 scale `d`
// (and for the _1 types an fp16 offset `m`), weights stored as 4-, 5- or
// 8-bit codes. Byte layouts (little endian), element j of a block:
//
//   Q4_0 (18 B): d | qs[16]           w = d * (nibble - 8)
//   Q4_1 (20 B): d | m | qs[16]       w = d * nibble + m
//   Q5_0 (22 B): d | qh[4] | qs[16]   w = d * ((nibble | hbit << 4) - 16)
//   Q5_1 (24 B): d | m | qh[4] | qs[16]   w = d * (nibble | hbit << 4) + m
//   Q8_0 (34 B): d | qs[32] (int8)    w = d * qs[j]
//
// The nibble of element j < 16 is the low half of qs[j], of element j >= 16
// the high half of qs[j - 16]; hbit is bit j of the 32-bit qh. Pure
// functions, any thread.

#include <cstdint>

namespace lumen::engine::quant {

constexpr int kLegacyBlock = 32;

// dst[n] from n / 32 blocks at src (n % 32 == 0).
void DequantizeRowQ4_0(const uint8_t* src, float* dst, int64_t n);
void DequantizeRowQ4_1(const uint8_t* src, float* dst, int64_t n);
void DequantizeRowQ5_0(const uint8_t* src, float* dst, int64_t n);
void DequantizeRowQ5_1(const uint8_t* src, float* dst, int64_t n);
void DequantizeRowQ8_0(const uint8_t* src, float* dst, int64_t n);

// n / 32 blocks at dst from src[n] (n % 32 == 0). Round to nearest as
// llama.cpp's reference quantizers do (symmetric types take the scale from
// the value of largest magnitude, the _1 types from the range).
void QuantizeRowQ4_0(const float* src, uint8_t* dst, int64_t n);
void QuantizeRowQ4_1(const float* src, uint8_t* dst, int64_t n);
void QuantizeRowQ5_0(const float* src, uint8_t* dst, int64_t n);
void QuantizeRowQ5_1(const float* src, uint8_t* dst, int64_t n);
void QuantizeRowQ8_0(const float* src, uint8_t* dst, int64_t n);

}  // namespace lumen::engine::quant
