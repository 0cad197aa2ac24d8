#pragma once
// Sums of the 8 lanes of an AVX2 vector, shared by the AVX2 kernel files.
// Internal linkage: a file compiled with other target flags (the AVX-512
// kernels) gets its own copy, never one merged with these.

#include <immintrin.h>

namespace lumen::engine::kernels {
namespace {

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}

inline int HorizontalSum(__m256i v) {
  __m128i s =
      _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_hadd_epi32(s, s);
  s = _mm_hadd_epi32(s, s);
  return _mm_cvtsi128_si32(s);
}

}  // namespace
}  // namespace lumen::engine::kernels
