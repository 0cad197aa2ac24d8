#pragma once
// ggml's k-quant formats: super-blocks of 256 weights split into 16 or 32
// element sub-blocks, each with a small integer scale (and for Q2_K, Q4_K,
// Q5_K an integer min) that multiplies one or two fp16 super-block scales.
// Byte layouts (little endian):
//
//   Q2_K (84 B):  scales[16] (low nibble scale, high nibble min) | qs[64]
//                 | d | dmin.  16-element sub-blocks, 2-bit codes:
//                 w = d * (sc & 15) * q - dmin * (sc >> 4)
//   Q3_K (110 B): hmask[32] | qs[64] | scales[12] (16 x 6 bit) | d.
//                 16-element sub-blocks, 3-bit codes (2 low bits in qs,
//                 the high bit in hmask): w = d * (s - 32) * (q - 4)
//   Q4_K (144 B): d | dmin | scales[12] (8 scales + 8 mins, 6 bit) | qs[128]
//                 32-element sub-blocks: w = d * sc * q - dmin * m
//   Q5_K (176 B): d | dmin | scales[12] | qh[32] | qs[128]; as Q4_K with a
//                 fifth bit from qh
//   Q6_K (210 B): ql[128] | qh[64] | scales[16] (int8) | d.
//                 16-element sub-blocks: w = d * sc * (q - 32)
//
// Within a super-block, codes are grouped in 32-element chunks: chunk c of
// Q2_K/Q3_K takes bits 2*(c%4) of qs[32*(c/4) + l]; chunk c of Q4_K/Q5_K the
// low (c even) or high (c odd) nibble of qs[32*(c/2) + l] (Q5_K: bit c of
// qh[l] on top); Q6_K's layout is spelled out in KQuantCodes6 (k_quants.cc).
// The 6-bit scale packings are unpacked by UnpackScalesQ3K/Q4K. Pure
// functions, any thread.

#include <cstdint>

namespace lumen::engine::quant {

constexpr int kSuperBlock = 256;

// n % 256 == 0.
void DequantizeRowQ2_K(const uint8_t* src, float* dst, int64_t n);
void DequantizeRowQ3_K(const uint8_t* src, float* dst, int64_t n);
void DequantizeRowQ4_K(const uint8_t* src, float* dst, int64_t n);
void DequantizeRowQ5_K(const uint8_t* src, float* dst, int64_t n);
void DequantizeRowQ6_K(const uint8_t* src, float* dst, int64_t n);

// Weighted least-squares searches for each sub-block's scale (and min), then
// the super-block scales (n % 256 == 0).
void QuantizeRowQ2_K(const float* src, uint8_t* dst, int64_t n);
void QuantizeRowQ3_K(const float* src, uint8_t* dst, int64_t n);
void QuantizeRowQ4_K(const float* src, uint8_t* dst, int64_t n);
void QuantizeRowQ5_K(const float* src, uint8_t* dst, int64_t n);
void QuantizeRowQ6_K(const float* src, uint8_t* dst, int64_t n);

// The 16 signed sub-block scales (-32..31) of a Q3_K `scales[12]` field.
void UnpackScalesQ3K(const uint8_t* packed, int8_t* scales);
// The 8 scales and 8 mins (0..63) of a Q4_K/Q5_K `scales[12]` field.
void UnpackScalesQ4K(const uint8_t* packed, uint8_t* scales, uint8_t* mins);

// Shared with the i-quants: fits w ~ scale * q, q integer in [-nmax, nmax-1],
// minimizing sum weight * (x - scale * q)^2 over a few candidate scales.
// Returns the scale and writes q.
float FitSymmetricScale(const float* x, const float* weight, int n, int nmax,
                        int* q);

}  // namespace lumen::engine::quant
