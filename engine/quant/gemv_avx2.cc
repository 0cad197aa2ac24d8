// AVX2 row-dot kernels for packed weights (quant_kernels.h). Tiles of R
// weight rows x T activation rows: each weight chunk of 32 codes is decoded
// once and multiplied with T activation rows (vpmaddubsw: unsigned codes x
// signed activations, exact since codes <= 63; the wide-code types use
// signed values and the sign trick instead).

#include <immintrin.h>

#include "engine/kernels/horizontal_sum.h"
#include "engine/quant/i_quants_simd.h"
#include "engine/quant/k_quants_simd.h"
#include "engine/quant/legacy_simd.h"
#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant::avx2 {

namespace {

using kernels::HorizontalSum;

// R rows starting at w (row stride row_bytes) against T activation rows
// starting at row m0; y points at (m0, first of the R columns).
template <class D, int R, int T>
void Tile(const QuantizedActs& x, int64_t m0, int64_t K, const uint8_t* w,
          int64_t row_bytes, float* y, int64_t ldy) {
  constexpr int S = D::kElems / 16;  // scales per block
  const int64_t blocks = K / D::kElems;
  const __m256i ones = _mm256_set1_epi16(1);
  static_assert(S == 2 || S % 8 == 0);
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    alignas(32) float scale[R][S], offset[R][S];
    const uint8_t* blk[R];
    for (int r = 0; r < R; ++r) {
      blk[r] = w + r * row_bytes + b * D::kBytes;
      D::Scales(blk[r], scale[r], offset[r]);
      if constexpr (D::kWideCodes) {
        // Signed values code - 128: the offset gives back 128 scales.
        for (int h = 0; h < S; ++h) offset[r][h] += 128.0f * scale[r][h];
      }
    }
    // Offsets times the activations' 16-sums, in the vector accumulators
    // (explicit FMAs: the same operations whatever the tile shape, so that a
    // row's result does not depend on M).
    for (int t = 0; t < T; ++t) {
      const float* s16 = x.sum16 + (m0 + t) * (K / 16) + b * S;
      for (int r = 0; r < R; ++r) {
        if constexpr (S >= 8) {
          for (int h = 0; h < S; h += 8) {
            acc[r][t] = _mm256_fmadd_ps(_mm256_load_ps(offset[r] + h),
                                        _mm256_loadu_ps(s16 + h), acc[r][t]);
          }
        } else {
          const __m256i mask = _mm256_setr_epi32(-1, -1, 0, 0, 0, 0, 0, 0);
          acc[r][t] = _mm256_fmadd_ps(_mm256_maskload_ps(offset[r], mask),
                                      _mm256_maskload_ps(s16, mask), acc[r][t]);
        }
      }
    }
    for (int c = 0; c < D::kElems / 32; ++c) {
      __m256i codes[R];
      __m256 scv[R];
      for (int r = 0; r < R; ++r) {
        codes[r] = D::Codes(blk[r], c);
        if constexpr (D::kWideCodes) {
          // Signed values; -128 (possible in Q8_0) is clamped to -127 so
          // that the sign trick cannot overflow.
          codes[r] = _mm256_max_epi8(
              _mm256_xor_si256(codes[r],
                               _mm256_set1_epi8(static_cast<char>(0x80))),
              _mm256_set1_epi8(-127));
        }
        // madd lanes hold 4 consecutive values: lanes 0-3 the first 16.
        scv[r] = _mm256_setr_m128(_mm_set1_ps(scale[r][2 * c]),
                                  _mm_set1_ps(scale[r][2 * c + 1]));
      }
      const int64_t k0 = b * D::kElems + 32 * c;
      for (int t = 0; t < T; ++t) {
        const __m256i xq = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(x.q + (m0 + t) * K + k0));
        const __m256 dx = _mm256_loadu_ps(x.d4 + (m0 + t) * (K / 4) + k0 / 4);
        __m256i ax;
        if constexpr (D::kWideCodes) ax = _mm256_sign_epi8(xq, xq);
        for (int r = 0; r < R; ++r) {
          __m256i prod;
          if constexpr (D::kWideCodes) {
            prod = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(codes[r], xq));
          } else {
            prod = _mm256_maddubs_epi16(codes[r], xq);
          }
          const __m256 sum = _mm256_cvtepi32_ps(_mm256_madd_epi16(prod, ones));
          acc[r][t] =
              _mm256_fmadd_ps(sum, _mm256_mul_ps(scv[r], dx), acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) y[t * ldy + r] = HorizontalSum(acc[r][t]);
  }
}

template <class D, int R>
void Rows(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* w,
          int64_t row_bytes, float* y, int64_t ldy) {
  int64_t m = 0;
  for (; m + 2 <= M; m += 2)
    Tile<D, R, 2>(x, m, K, w, row_bytes, y + m * ldy, ldy);
  if (m < M) Tile<D, R, 1>(x, m, K, w, row_bytes, y + m * ldy, ldy);
}

template <class D>
void Gemv(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* w,
          int64_t N, float* y, int64_t ldy) {
  const int64_t row_bytes = K / D::kElems * D::kBytes;
  if (M == 1) {
    constexpr int R = 4;
    const int64_t tiles = N / R;
#pragma omp parallel for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      Tile<D, R, 1>(x, 0, K, w + tile * R * row_bytes, row_bytes, y + tile * R,
                    ldy);
    }
    for (int64_t n = tiles * R; n < N; ++n)
      Tile<D, 1, 1>(x, 0, K, w + n * row_bytes, row_bytes, y + n, ldy);
    return;
  }
  constexpr int R = 2;
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

}  // namespace lumen::engine::quant::avx2
