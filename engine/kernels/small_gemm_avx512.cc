// AVX-512 versions of the small-M kernels (see small_gemm.h), used when the
// CPU has AVX-512 F/BW/VL/VNNI. This file is compiled with those extensions
// enabled, so it includes no C++ library headers: an inline library function
// compiled here could be merged into code that runs on AVX2-only CPUs.

#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/small_gemm_isa.h"

namespace lumen::engine::kernels::avx512 {

namespace {

// `next`, when not null, is the next tile's first weight row: its lines are
// prefetched while this tile computes, so the weights stream from memory
// during the arithmetic instead of between tiles. Into L2, as the packed
// kernels do: into L1 (the tile and the next one, 2 x 18 KB at K = 768, do
// not both fit Zen 4's 32 KB L1), one-sequence decode of the 110M f32 file ran
// at 52-67 tokens/s against 63-95 (`lumen bench engine`, alternated, Zen 4).
template <int R, int T>
inline void TileF32(const float* x, int64_t K, const float* w, int64_t N,
                    float* y, int64_t n0, const float* next) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    if (next != nullptr) {
      for (int r = 0; r < R; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(next + r * K + k),
                     _MM_HINT_T1);
    }
    __m512 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = _mm512_loadu_ps(x + t * K + k);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_loadu_ps(w + (n0 + r) * K + k);
      for (int t = 0; t < T; ++t)
        acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      y[t * N + n0 + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <int R>
inline void RowsF32(const float* x, int64_t M, int64_t K, const float* w,
                    int64_t N, float* y, int64_t n0) {
  // Prefetch the next tile during the first pass over this one.
  const float* next = n0 + 2 * R <= N ? w + (n0 + R) * K : nullptr;
  int64_t m = 0;
  for (; m + 4 <= M; m += 4, next = nullptr)
    TileF32<R, 4>(x + m * K, K, w, N, y + m * N, n0, next);
  switch (M - m) {
    case 3:
      TileF32<R, 3>(x + m * K, K, w, N, y + m * N, n0, next);
      break;
    case 2:
      TileF32<R, 2>(x + m * K, K, w, N, y + m * N, n0, next);
      break;
    case 1:
      TileF32<R, 1>(x + m * K, K, w, N, y + m * N, n0, next);
      break;
  }
}

}  // namespace

void SmallGemmF32(const float* x, int64_t M, int64_t K, const float* w,
                  int64_t N, float* y) {
  constexpr int R = 6;
  const int64_t tiles = N / R;
#pragma omp parallel for schedule(static)
  for (int64_t tile = 0; tile < tiles; ++tile)
    RowsF32<R>(x, M, K, w, N, y, tile * R);
  for (int64_t n = tiles * R; n < N; ++n) RowsF32<1>(x, M, K, w, N, y, n);
}

}  // namespace lumen::engine::kernels::avx512
