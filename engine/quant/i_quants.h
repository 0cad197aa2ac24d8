#pragma once
// ggml's 4-bit non-linear formats: each 4-bit code indexes a fixed table of
// 16 int8 levels (denser near zero) that a scale multiplies.
//
//   IQ4_NL (18 B per 32):  d | qs[16]                w = d * kIq4Levels[code]
//   IQ4_XS (136 B per 256): d | scales_h (u16) | scales_l[4] | qs[128]
//       eight 32-element sub-blocks, each with a 6-bit scale
//       ls = (low nibble of scales_l[ib / 2] at 4 * (ib % 2)) |
//            (bits 2 ib of scales_h) << 4,   w = d * (ls - 32) * level
//
// Codes are packed like Q4_0: element j < 16 of a 32-group in the low
// nibble of qs[j], element j >= 16 in the high nibble of qs[j - 16]. Pure
// functions, any thread.

#include <cstdint>

namespace lumen::engine::quant {

inline constexpr int8_t kIq4Levels[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

void DequantizeRowIQ4_NL(const uint8_t* src, float* dst,
                         int64_t n);  // n % 32 == 0
void DequantizeRowIQ4_XS(const uint8_t* src, float* dst,
                         int64_t n);  // n % 256 == 0
// Per 32 elements: a search over candidate scales, codes nearest in the table.
void QuantizeRowIQ4_NL(const float* src, uint8_t* dst, int64_t n);
void QuantizeRowIQ4_XS(const float* src, uint8_t* dst, int64_t n);

}  // namespace lumen::engine::quant
