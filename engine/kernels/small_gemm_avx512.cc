// AVX-512 versions of the small-M kernels (see small_gemm.h), used when the
// CPU has AVX-512 F/BW/VL/VNNI. This file is compiled with those extensions
// enabled, so it includes no C++ library headers: an inline library function
// compiled here could be merged into code that runs on AVX2-only CPUs.

#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/small_gemm_isa.h"

namespace lumen::engine::kernels::avx512 {

namespace {

constexpr int64_t kBlock = 32;  // int8 quantization block (quantize.h)

// `next`, when not null, is the next tile's first weight row: its lines are
// prefetched while this tile computes, so the weights stream from memory
// during the arithmetic instead of between tiles.
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
                     _MM_HINT_T0);
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

// Two consecutive 32-blocks' scales spread over 16 lanes (8 each).
inline __m512 PairScales(const float* s) {
  // Two floats through an unaligned 64-bit integer load (no type punning).
  const __m512 two = _mm512_castps128_ps512(
      _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s))));
  return _mm512_permutexvar_ps(
      _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), two);
}

template <int R, int T>
inline void TileQ8(const int8_t* xq, const float* xs, int64_t K,
                   const int8_t* wq, const float* ws, int64_t N, float* y,
                   int64_t n0, const int8_t* next) {
  const int64_t blocks = K / kBlock;
  const __m512i zero = _mm512_setzero_si512();
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; b += 2) {
    if (next != nullptr) {
      for (int r = 0; r < R; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(next + r * K + b * kBlock),
                     _MM_HINT_T0);
    }
    __m512i ax[T];
    __mmask64 negative[T];
    __m512 xscale[T];
    for (int t = 0; t < T; ++t) {
      const __m512i xv = _mm512_loadu_si512(xq + t * K + b * kBlock);
      ax[t] = _mm512_abs_epi8(xv);
      negative[t] = _mm512_movepi8_mask(xv);
      xscale[t] = PairScales(xs + t * blocks + b);
    }
    for (int r = 0; r < R; ++r) {
      const int64_t n = n0 + r;
      const __m512i wv = _mm512_loadu_si512(wq + n * K + b * kBlock);
      const __m512 wscale = PairScales(ws + n * blocks + b);
      for (int t = 0; t < T; ++t) {
        // |x| * (w with x's sign) = x * w, summed exactly in int32 (weights
        // are in [-127, 127], so negating them cannot overflow).
        const __m512i sw = _mm512_mask_sub_epi8(wv, negative[t], zero, wv);
        const __m512i dot = _mm512_dpbusd_epi32(zero, ax[t], sw);
        acc[r][t] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                            _mm512_mul_ps(wscale, xscale[t]), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      y[t * N + n0 + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <int R>
inline void RowsQ8(const int8_t* xq, const float* xs, int64_t M, int64_t K,
                   const int8_t* wq, const float* ws, int64_t N, float* y,
                   int64_t n0) {
  const int64_t blocks = K / kBlock;
  const int8_t* next = n0 + 2 * R <= N ? wq + (n0 + R) * K : nullptr;
  int64_t m = 0;
  for (; m + 4 <= M; m += 4, next = nullptr) {
    TileQ8<R, 4>(xq + m * K, xs + m * blocks, K, wq, ws, N, y + m * N, n0,
                 next);
  }
  for (; m < M; ++m, next = nullptr) {
    TileQ8<R, 1>(xq + m * K, xs + m * blocks, K, wq, ws, N, y + m * N, n0,
                 next);
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

void SmallGemmQ8(const int8_t* xq, const float* xs, int64_t M, int64_t K,
                 const int8_t* wq, const float* ws, int64_t N, float* y) {
  constexpr int R = 4;
  const int64_t tiles = N / R;
#pragma omp parallel for schedule(static)
  for (int64_t tile = 0; tile < tiles; ++tile)
    RowsQ8<R>(xq, xs, M, K, wq, ws, N, y, tile * R);
  for (int64_t n = tiles * R; n < N; ++n)
    RowsQ8<1>(xq, xs, M, K, wq, ws, N, y, n);
}

}  // namespace lumen::engine::kernels::avx512
