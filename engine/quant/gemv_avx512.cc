// AVX-512 VNNI row-dot kernels for packed weights (quant_kernels.h). This
// file is compiled with AVX-512 enabled and runs only after the CPU check,
// so it includes no C++ library headers (an inline library function
// compiled here could be merged into code that runs on AVX2-only CPUs).
//
// Tiles of R weight rows x T activation rows over groups of G values (one
// 256 super-block, or two 32-blocks): a weight row's 64 codes are decoded
// once into a zmm and multiplied with each activation row by vpdpbusd
// (unsigned codes x signed activations, exact in int32); per 4-value lane
// the product of the weight's 16-scale and the activation's block scale
// weighs the int sum, and the weight offsets meet the activations' 16-sums
// in one more FMA per group.

#include <immintrin.h>

#include "engine/quant/i_quants_simd.h"
#include "engine/quant/k_quants_simd.h"
#include "engine/quant/legacy_simd.h"
#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant::avx512 {

namespace {

template <class D>
struct Group {
  static constexpr int kElems = D::kElems >= 64 ? D::kElems : 64;
  static constexpr int kBlocks = kElems / D::kElems;  // blocks per group
  static constexpr int kScales = kElems / 16;
  static constexpr int kUnits = kElems / 64;  // zmm of codes per group
  static constexpr int kBytes = kBlocks * D::kBytes;
};

// 64 codes of unit u of the group at g.
template <class D>
inline __m512i Codes64(const uint8_t* g, int u) {
  __m256i lo, hi;
  if constexpr (D::kElems == 32) {
    lo = D::Codes(g, 0);
    hi = D::Codes(g + D::kBytes, 0);
  } else {
    lo = D::Codes(g, 2 * u);
    hi = D::Codes(g, 2 * u + 1);
  }
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

template <class D>
inline void GroupScales(const uint8_t* g, float* scale, float* offset) {
  for (int b = 0; b < Group<D>::kBlocks; ++b) {
    D::Scales(g + b * D::kBytes, scale + b * D::kElems / 16,
              offset + b * D::kElems / 16);
  }
}

template <int S>
inline __m512 LoadScales(const float* p) {
  if constexpr (S >= 16) {
    return _mm512_loadu_ps(p);
  } else {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << S) - 1), p);
  }
}

template <class D, int R, int T>
void Tile(const QuantizedActs& x, int64_t m0, int64_t K, const uint8_t* w,
          int64_t row_bytes, float* y, int64_t ldy) {
  using G = Group<D>;
  const int64_t groups = K / G::kElems;
  // Lane i (4 values) of a 64-value unit takes the scale of its 16-run.
  const __m512i spread =
      _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i zero = _mm512_setzero_si512();
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    alignas(64) float scale[R][G::kScales], offset[R][G::kScales];
    const uint8_t* grp[R];
    for (int r = 0; r < R; ++r) {
      grp[r] = w + r * row_bytes + g * G::kBytes;
      GroupScales<D>(grp[r], scale[r], offset[r]);
    }
    for (int t = 0; t < T; ++t) {
      const __m512 s16 = LoadScales<G::kScales>(x.sum16 + (m0 + t) * (K / 16) +
                                                g * G::kScales);
      for (int r = 0; r < R; ++r) {
        acc[r][t] =
            _mm512_fmadd_ps(LoadScales<G::kScales>(offset[r]), s16, acc[r][t]);
      }
    }
    for (int u = 0; u < G::kUnits; ++u) {
      __m512i codes[R];
      __m512 scv[R];
      for (int r = 0; r < R; ++r) {
        codes[r] = Codes64<D>(grp[r], u);
        scv[r] = _mm512_permutexvar_ps(
            spread, _mm512_castps128_ps512(_mm_load_ps(scale[r] + 4 * u)));
      }
      const int64_t k0 = g * G::kElems + 64 * u;
      for (int t = 0; t < T; ++t) {
        const __m512i xq = _mm512_loadu_si512(x.q + (m0 + t) * K + k0);
        const __m512 dx = _mm512_loadu_ps(x.d4 + (m0 + t) * (K / 4) + k0 / 4);
        for (int r = 0; r < R; ++r) {
          const __m512i dot = _mm512_dpbusd_epi32(zero, codes[r], xq);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                      _mm512_mul_ps(scv[r], dx), acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <class D, int R>
void Rows(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* w,
          int64_t row_bytes, float* y, int64_t ldy) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4)
    Tile<D, R, 4>(x, m, K, w, row_bytes, y + m * ldy, ldy);
  switch (M - m) {
    case 3:
      Tile<D, R, 3>(x, m, K, w, row_bytes, y + m * ldy, ldy);
      break;
    case 2:
      Tile<D, R, 2>(x, m, K, w, row_bytes, y + m * ldy, ldy);
      break;
    case 1:
      Tile<D, R, 1>(x, m, K, w, row_bytes, y + m * ldy, ldy);
      break;
  }
}

template <class D>
void Gemv(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* w,
          int64_t N, float* y, int64_t ldy) {
  const int64_t row_bytes = K / D::kElems * D::kBytes;
  constexpr int R = 4;
  const int64_t tiles = N / R;
#pragma omp parallel for schedule(static)
  for (int64_t tile = 0; tile < tiles; ++tile)
    Rows<D, R>(x, M, K, w + tile * R * row_bytes, row_bytes, y + tile * R, ldy);
  for (int64_t n = tiles * R; n < N; ++n)
    Rows<D, 1>(x, M, K, w + n * row_bytes, row_bytes, y + n, ldy);
}

}  // namespace

void PackedGemv(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
                const uint8_t* w, int64_t N, float* y, int64_t ldy) {
  switch (type) {
    case kIdQ4_0:
      return Gemv<DecodeQ4_0>(x, M, K, w, N, y, ldy);
    case kIdQ4_1:
      return Gemv<DecodeQ4_1>(x, M, K, w, N, y, ldy);
    case kIdQ5_0:
      return Gemv<DecodeQ5_0>(x, M, K, w, N, y, ldy);
    case kIdQ5_1:
      return Gemv<DecodeQ5_1>(x, M, K, w, N, y, ldy);
    case kIdQ8_0:
      return Gemv<DecodeQ8_0>(x, M, K, w, N, y, ldy);
    case kIdQ2_K:
      return Gemv<DecodeQ2_K>(x, M, K, w, N, y, ldy);
    case kIdQ3_K:
      return Gemv<DecodeQ3_K>(x, M, K, w, N, y, ldy);
    case kIdQ4_K:
      return Gemv<DecodeQ4_K>(x, M, K, w, N, y, ldy);
    case kIdQ5_K:
      return Gemv<DecodeQ5_K>(x, M, K, w, N, y, ldy);
    case kIdQ6_K:
      return Gemv<DecodeQ6_K>(x, M, K, w, N, y, ldy);
    case kIdIQ4_NL:
      return Gemv<DecodeIQ4_NL>(x, M, K, w, N, y, ldy);
    case kIdIQ4_XS:
      return Gemv<DecodeIQ4_XS>(x, M, K, w, N, y, ldy);
  }
}

}  // namespace lumen::engine::quant::avx512
