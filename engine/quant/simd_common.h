#pragma once
// AVX2 helpers for the block decoders (legacy_simd.h, k_quants_simd.h,
// i_quants_simd.h). Everything here has internal linkage: the AVX2 and the
// AVX-512 kernel files each compile their own copy with their own target
// flags, and no copy may leak into the other's callers. No C++ library
// headers (see gemv_avx512.cc).

#include <immintrin.h>

#include <cstdint>

namespace lumen::engine::quant {
namespace {

// 16 bytes of packed nibbles -> 32 codes: low nibbles (elements 0..15) in
// bytes 0..15, high nibbles (elements 16..31) in bytes 16..31.
inline __m256i Nibbles32(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(v, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
  return _mm256_set_m128i(hi, lo);
}

// Byte j = 0xFF when bit j of `bits` is set, else 0.
inline __m256i BitsToBytes(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101,
                         0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// Bytes of `v` shifted right by `n` bits within 16-bit lanes.
inline __m256i ShiftRight16(__m256i v, int n) {
  return _mm256_srl_epi16(v, _mm_cvtsi32_si128(n));
}

// 0x`flag` where bit `bit` of each byte of v is set.
inline __m256i ByteBitFlag(__m256i v, int bit, int flag) {
  const __m256i m = _mm256_set1_epi8(static_cast<char>(1 << bit));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, m), m),
                          _mm256_set1_epi8(static_cast<char>(flag)));
}

}  // namespace
}  // namespace lumen::engine::quant
