#include "engine/kernels/quantize.h"

#include <immintrin.h>

#include <cmath>

namespace lumen::engine::kernels {

void QuantizeRowsQ8(const float* x, int64_t rows, int64_t cols, int8_t* q,
                    float* scales) {
  const int64_t blocks = cols / kQBlock;
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* src = x + r * cols + b * kQBlock;
      __m256 v[4];
      __m256 amax = _mm256_setzero_ps();
      for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(src + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[k]));
      }
      __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax),
                            _mm256_extractf128_ps(amax, 1));
      m = _mm_max_ps(m, _mm_movehl_ps(m, m));
      m = _mm_max_ss(m, _mm_movehdup_ps(m));
      const float max_abs = _mm_cvtss_f32(m);
      const float d = max_abs / 127.0f;
      scales[r * blocks + b] = d;
      const __m256 inv = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
      __m256i i32[4];
      for (int k = 0; k < 4; ++k) {
        i32[k] = _mm256_cvtps_epi32(
            _mm256_round_ps(_mm256_mul_ps(v[k], inv), _MM_ROUND_NEAREST));
      }
      // Pack 32 int32 -> 32 int8 and undo the lane interleaving of packs.
      __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]);
      __m256i i16b = _mm256_packs_epi32(i32[2], i32[3]);
      __m256i i8 = _mm256_packs_epi16(i16a, i16b);
      i8 = _mm256_permutevar8x32_epi32(
          i8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(
          reinterpret_cast<__m256i*>(q + r * cols + b * kQBlock), i8);
    }
  }
}

}  // namespace lumen::engine::kernels
