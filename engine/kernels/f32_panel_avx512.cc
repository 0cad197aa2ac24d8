// The AVX-512 fp32 panel GEMM (f32_panel.h). This file is compiled with
// AVX-512 enabled, so it includes no C++ library headers: an inline library
// function compiled here could be merged into code that runs on AVX2-only
// CPUs.

#include <immintrin.h>

#include "engine/kernels/f32_panel.h"

namespace lumen::engine::kernels::avx512 {

namespace {

constexpr int kTiles = 3;  // tiles of 16 weight rows per pass: 48 outputs
// Activation rows per pass: 3 x 8 = 24 accumulators, and per k 3 weight
// loads and 8 broadcasts for 24 FMAs. In a standalone loop over the 110M
// shapes (2 threads, Zen 5, aligned panels) this ran at 214-310 GFLOP/s at
// M = 16 and 352-397 at M = 512, against 222-282 and 267-330 for 2 tiles x
// 12 rows and 190-271 and 356-402 for 4 tiles x 6 rows.
constexpr int kRows = 8;
// Columns per pass over a group: its 3 x 1024 x 64 bytes (192 KB) stay in
// L2 while the activation rows go by, whatever K is.
constexpr int64_t kChunk = 1024;

inline __mmask16 ValidLanes(int64_t from, int64_t N) {
  if (N - from >= 16) return 0xFFFF;
  return N - from <= 0 ? 0 : static_cast<__mmask16>((1u << (N - from)) - 1);
}

// T activation rows from x (row stride K) over columns [k0, k0 + kc) of a
// group of kTiles tiles at p: y[t][0, 48) (masked to `valid`) starts from
// zero at k0 = 0 and from its stored partial sums after; storing and
// reloading fp32 is exact, so each output still chains one FMA per k in
// order. `next`, when not null, is the weights this thread reads next (a
// chunk laid out as p's): the lines of its columns [next_from, next_to) are
// prefetched into L2 during the arithmetic.
template <int T>
inline void GroupRows(const float* x, int64_t K, int64_t k0, int64_t kc,
                      const float* p, float* y, int64_t N,
                      const __mmask16 valid[kTiles], const float* next,
                      int64_t next_from, int64_t next_to) {
  __m512 acc[kTiles][T];
  for (int g = 0; g < kTiles; ++g) {
    for (int t = 0; t < T; ++t) {
      acc[g][t] = k0 == 0 ? _mm512_setzero_ps()
                          : _mm512_maskz_loadu_ps(valid[g], y + t * N + 16 * g);
    }
  }
  const float* xk = x + k0;
  for (int64_t k = 0; k < kc; ++k) {
    // (A short chunk before a long one prefetches several lines per k.)
    for (int64_t j = next_from + k; next != nullptr && j < next_to; j += kc) {
      for (int g = 0; g < kTiles; ++g) {
        _mm_prefetch(reinterpret_cast<const char*>(next + (g * K + j) * 16),
                     _MM_HINT_T1);
      }
    }
    __m512 w[kTiles];
    for (int g = 0; g < kTiles; ++g)
      w[g] = _mm512_load_ps(p + (g * K + k0 + k) * 16);
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_set1_ps(xk[t * K + k]);
      for (int g = 0; g < kTiles; ++g)
        acc[g][t] = _mm512_fmadd_ps(w[g], xv, acc[g][t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    for (int g = 0; g < kTiles; ++g)
      _mm512_mask_storeu_ps(y + t * N + 16 * g, valid[g], acc[g][t]);
  }
}

}  // namespace

void F32PanelGemm(const float* x, int64_t M, int64_t K, const float* panel,
                  int64_t N, float* y) {
  const int64_t groups = (N + 16 * kTiles - 1) / (16 * kTiles);
  const int64_t group_floats = 16 * kTiles * K;
#pragma omp parallel for schedule(static)
  for (int64_t group = 0; group < groups; ++group) {
    const float* p = panel + group * group_floats;
    const int64_t n0 = group * 16 * kTiles;
    __mmask16 valid[kTiles];
    for (int g = 0; g < kTiles; ++g) valid[g] = ValidLanes(n0 + 16 * g, N);
    float* yg = y + n0;
    for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
      const int64_t kc = K - k0 < kChunk ? K - k0 : kChunk;
      // Prefetched during the passes below: the group's next chunk, or the
      // next group's first (a thread's groups are adjacent, static).
      const float* next = k0 + kc < K          ? p + (k0 + kc) * 16
                          : group + 1 < groups ? p + group_floats
                                               : nullptr;
      const int64_t next_start = k0 + kc < K ? k0 + kc : 0;
      const int64_t next_kc = K - next_start < kChunk ? K - next_start : kChunk;
      // Every pass over the rows asks for its share of the next chunk's
      // columns: DRAM then streams through all of them, not only the first
      // (at M = 16, the first pass alone would need twice a core's share of
      // the bandwidth). `lumen bench engine` decode 16 on the 110M f32 file,
      // 4 alternated runs on a noisy VM: 634-680 -> 609-696 tokens/s, ahead
      // in 3 of the 4 pairs; gemm_bench at M = 16 within its noise.
      const int64_t rest = M % kRows;
      const int64_t passes =
          M / kRows + (rest >= 4) + (rest % 4 >= 2) + (rest % 2);
      int64_t pass = 0;
      auto run = [&]<int T>(int64_t m) {
        GroupRows<T>(x + m * K, K, k0, kc, p, yg + m * N, N, valid, next,
                     next_kc * pass / passes, next_kc * (pass + 1) / passes);
        ++pass;
      };
      int64_t m = 0;
      for (; m + kRows <= M; m += kRows) run.template operator()<kRows>(m);
      if (M - m >= 4) {
        run.template operator()<4>(m);
        m += 4;
      }
      if (M - m >= 2) {
        run.template operator()<2>(m);
        m += 2;
      }
      if (M - m == 1) run.template operator()<1>(m);
    }
  }
}

}  // namespace lumen::engine::kernels::avx512
