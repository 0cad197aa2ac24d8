#pragma once
// The int8 panel of 16 weight rows and the GEMM of activation rows over it
// (see gemm_avx512.cc), for the kernel that unpacks GGUF blocks into the
// panel. The Q4_K/Q6_K tile kernel (k_tiles_avx512.cc) borrows Panel's
// memory for its own per-span layout. AVX-512 files only; no C++ library
// headers.

#include <immintrin.h>

#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant::avx512 {
namespace {

constexpr int kTileRows = 8;  // activation rows per register tile
// Activation rows per pass over the weights at large M: a pass streams every
// weight tile past this many rows' int8 values and scales, which then stay
// in L2 (at M = 512 without passes, prefill read them from L3 once per
// tile).
constexpr int64_t kPanelPassRows = 128;

struct Panel {
  uint32_t* codes;  // [K/4][16] 4 codes of each row
  float* scale;     // [K/16][16]
  float* offset;    // [K/16][16]
};

inline Panel PanelAt(uint8_t* base, int64_t K) {
  Panel p;
  p.codes = reinterpret_cast<uint32_t*>(base);
  p.scale = reinterpret_cast<float*>(base + 16 * K);
  p.offset = p.scale + K;
  return p;
}

// The activations' d * sum(q) over each kRun values of row t.
template <int kRun>
inline const float* ActSums(const QuantizedActs& x, int64_t t, int64_t K) {
  if constexpr (kRun == 32) return x.sum32 + t * (K / 32);
  return x.sum16 + t * (K / 16);
}

// The integer zero term of a 32-block whose codes are value + (128 >>
// kZeroShift) (gemm_avx512.cc's kZeroShiftOf): -(128 >> kZeroShift) * sum of
// q, from zsum32 (-128 * sum of q; the shift is exact).
template <int kZeroShift>
inline __m512i ZeroTerm(const int32_t* zsum) {
  const __m512i z = _mm512_set1_epi32(*zsum);
  if constexpr (kZeroShift == 0) return z;
  return _mm512_srai_epi32(z, kZeroShift);
}

// kZeroShift >= 0 (fixed zero code, kRun 32): the codes' zero point
// is subtracted in integers (ZeroTerm) and the panel's offsets are unused;
// -1: the offsets' fp32 term per run.
template <int T, int kRun, int kZeroShift>
void PanelTile(const QuantizedActs& x, int64_t m0, int64_t K, const Panel& p,
               float* y, int64_t ldy, __mmask16 valid) {
  static_assert(kZeroShift < 0 || kRun == 32);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const int8_t* xq = x.q + m0 * K;
  const float* d4 = x.d4 + m0 * (K / 4);
  const float* sums = ActSums<kRun>(x, m0, K);
  const int32_t* zsum = kZeroShift >= 0 ? x.zsum32 + m0 * (K / 32) : nullptr;
  constexpr int kGroups = kRun / 4;  // panel zmms (4 codes per row) per run
  for (int64_t h = 0; h < K / kRun; ++h) {
    __m512i isum[T];
    for (int t = 0; t < T; ++t) {
      if constexpr (kZeroShift >= 0) {
        isum[t] = ZeroTerm<kZeroShift>(zsum + t * (K / 32) + h);
      } else {
        isum[t] = _mm512_setzero_si512();
      }
    }
    for (int j = 0; j < kGroups; ++j) {
      const __m512i wv = _mm512_load_si512(p.codes + (kGroups * h + j) * 16);
      for (int t = 0; t < T; ++t) {
        int32_t four;
        __builtin_memcpy(&four, xq + t * K + kRun * h + 4 * j, 4);
        isum[t] = _mm512_dpbusd_epi32(isum[t], wv, _mm512_set1_epi32(four));
      }
    }
    const __m512 scv = _mm512_load_ps(p.scale + (kRun / 16) * h * 16);
    for (int t = 0; t < T; ++t) {
      acc[t] = _mm512_fmadd_ps(
          _mm512_cvtepi32_ps(isum[t]),
          _mm512_mul_ps(scv, _mm512_set1_ps(d4[t * (K / 4) + kGroups * h])),
          acc[t]);
    }
    if constexpr (kZeroShift < 0) {
      const __m512 offv = _mm512_load_ps(p.offset + (kRun / 16) * h * 16);
      for (int t = 0; t < T; ++t) {
        acc[t] = _mm512_fmadd_ps(offv, _mm512_set1_ps(sums[t * (K / kRun) + h]),
                                 acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * ldy, valid, acc[t]);
}

// Rows [0, M), kTileRows (8) at a time and then the rest:
// rows_from.operator()<T>(m) runs T rows from m.
template <class RunRows>
void InEights(int64_t M, RunRows rows_from) {
  static_assert(kTileRows == 8, "the switch below covers 7 to 1 rows");
  int64_t m = 0;
  for (; m + kTileRows <= M; m += kTileRows)
    rows_from.template operator()<kTileRows>(m);
  switch (M - m) {
    case 7:
      return rows_from.template operator()<7>(m);
    case 6:
      return rows_from.template operator()<6>(m);
    case 5:
      return rows_from.template operator()<5>(m);
    case 4:
      return rows_from.template operator()<4>(m);
    case 3:
      return rows_from.template operator()<3>(m);
    case 2:
      return rows_from.template operator()<2>(m);
    case 1:
      return rows_from.template operator()<1>(m);
  }
}

template <int kRun, int kZeroShift>
void PanelRows(const QuantizedActs& x, int64_t M, int64_t K, const Panel& p,
               float* y, int64_t ldy, __mmask16 valid) {
  InEights(M, [&]<int T>(int64_t m) {
    PanelTile<T, kRun, kZeroShift>(x, m, K, p, y + m * ldy, ldy, valid);
  });
}

}  // namespace
}  // namespace lumen::engine::quant::avx512
