// The AVX-512 fp32 panel GEMM (f32_panel.h). This file is compiled with
// AVX-512 enabled, so it includes no C++ library headers: an inline library
// function compiled here could be merged into code that runs on AVX2-only
// CPUs.

#include <immintrin.h>

#include "engine/kernels/f32_panel.h"

namespace lumen::engine::kernels::avx512 {

namespace {

// T activation rows from x against a pair of tiles p (32 weight rows, the
// second tile K * 16 floats after the first): 2T accumulators, two weight
// loads and T broadcasts per k. `next`, when not null, is the pair this
// thread runs next: its lines are prefetched into L2 while this pair
// computes, so that the weights stream from memory during the arithmetic.
// valid0/valid1: the outputs of each tile that exist (N's tail).
template <int T>
inline void PairRows(const float* x, int64_t K, const float* p, float* y,
                     int64_t N, __mmask16 valid0, __mmask16 valid1,
                     const float* next) {
  __m512 a0[T], a1[T];
  for (int t = 0; t < T; ++t) a0[t] = a1[t] = _mm512_setzero_ps();
  const float* p1 = p + K * 16;
  for (int64_t k = 0; k < K; ++k) {
    if (next != nullptr) {
      _mm_prefetch(reinterpret_cast<const char*>(next + k * 16), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(next + (K + k) * 16),
                   _MM_HINT_T1);
    }
    const __m512 w0 = _mm512_loadu_ps(p + k * 16);
    const __m512 w1 = _mm512_loadu_ps(p1 + k * 16);
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_set1_ps(x[t * K + k]);
      a0[t] = _mm512_fmadd_ps(w0, xv, a0[t]);
      a1[t] = _mm512_fmadd_ps(w1, xv, a1[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    _mm512_mask_storeu_ps(y + t * N, valid0, a0[t]);
    _mm512_mask_storeu_ps(y + t * N + 16, valid1, a1[t]);
  }
}

inline __mmask16 ValidLanes(int64_t from, int64_t N) {
  if (N - from >= 16) return 0xFFFF;
  return N - from <= 0 ? 0 : static_cast<__mmask16>((1u << (N - from)) - 1);
}

}  // namespace

void F32PanelGemm(const float* x, int64_t M, int64_t K, const float* panel,
                  int64_t N, float* y) {
  const int64_t pairs = (N + 31) / 32;
  // Rows go 12 at a time (24 accumulators); up to 16 rows (decode steps)
  // 8 at a time, which measured 20-45% faster at M = 16 than 12 + 4
  // (a standalone loop over the 110M shapes, 2 threads, Zen 5).
#pragma omp parallel for schedule(static)
  for (int64_t pair = 0; pair < pairs; ++pair) {
    const float* p = panel + pair * 32 * K;
    const float* next = pair + 1 < pairs ? p + 32 * K : nullptr;
    const int64_t n0 = pair * 32;
    const __mmask16 v0 = ValidLanes(n0, N), v1 = ValidLanes(n0 + 16, N);
    float* yp = y + n0;
    int64_t m = 0;
    if (M <= 16) {
      for (; m + 8 <= M; m += 8, next = nullptr)
        PairRows<8>(x + m * K, K, p, yp + m * N, N, v0, v1, next);
    }
    for (; m + 12 <= M; m += 12, next = nullptr)
      PairRows<12>(x + m * K, K, p, yp + m * N, N, v0, v1, next);
    for (; m + 4 <= M; m += 4, next = nullptr)
      PairRows<4>(x + m * K, K, p, yp + m * N, N, v0, v1, next);
    for (; m < M; ++m, next = nullptr)
      PairRows<1>(x + m * K, K, p, yp + m * N, N, v0, v1, next);
  }
}

}  // namespace lumen::engine::kernels::avx512
