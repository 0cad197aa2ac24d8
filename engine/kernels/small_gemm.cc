#include "engine/kernels/small_gemm.h"

#include <immintrin.h>
#include <omp.h>

#include "engine/kernels/horizontal_sum.h"
#include "engine/kernels/small_gemm_isa.h"

namespace lumen::engine::kernels {

namespace {

// R rows of W against T rows of x: R*T accumulators. `next`, when not
// null, is the next tile's first weight row, prefetched during this tile so
// that the weights stream from memory while the arithmetic runs. Into L2,
// as in small_gemm_avx512.cc; here two 12 KB tiles would fit L1, and the
// change measured within noise (f32 decode 1 at 57, 60, 60 against 58, 70,
// 60 tokens/s with LUMEN_NO_AVX512=1 on Zen 4).
template <int R, int T>
inline void TileF32(const float* x, int64_t K, const float* w, int64_t N,
                    float* y, int64_t n0, const float* next) {
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k += 8) {
    if (next != nullptr && k % 16 == 0) {
      for (int r = 0; r < R; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(next + r * K + k),
                     _MM_HINT_T1);
    }
    __m256 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + t * K + k);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_loadu_ps(w + (n0 + r) * K + k);
      for (int t = 0; t < T; ++t)
        acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * N + n0 + r] = HorizontalSum(acc[r][t]);
}

// Scalar tail for K not a multiple of 8 or N remainders.
void RowDotF32(const float* x, int64_t M, int64_t K, const float* w, int64_t N,
               float* y, int64_t n) {
  for (int64_t m = 0; m < M; ++m) {
    float s = 0.0f;
    for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * w[n * K + k];
    y[m * N + n] = s;
  }
}

}  // namespace

void SmallGemmF32(const float* x, int64_t M, int64_t K, const float* w,
                  int64_t N, float* y) {
  if (K % 16 == 0 && ActiveSmallGemmIsa() == SmallGemmIsa::kAvx512) {
    avx512::SmallGemmF32(x, M, K, w, N, y);
    return;
  }
  if (K % 8 != 0) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) RowDotF32(x, M, K, w, N, y, n);
    return;
  }
  constexpr int R = 4;
  const int64_t tiles = N / R;
#pragma omp parallel for schedule(static)
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t n0 = tile * R;
    const float* next = tile + 1 < tiles ? w + (n0 + R) * K : nullptr;
    int64_t m = 0;
    for (; m + 3 <= M; m += 3, next = nullptr)
      TileF32<R, 3>(x + m * K, K, w, N, y + m * N, n0, next);
    if (M - m == 2) TileF32<R, 2>(x + m * K, K, w, N, y + m * N, n0, next);
    if (M - m == 1) TileF32<R, 1>(x + m * K, K, w, N, y + m * N, n0, next);
  }
  for (int64_t n = tiles * R; n < N; ++n) RowDotF32(x, M, K, w, N, y, n);
}

}  // namespace lumen::engine::kernels
