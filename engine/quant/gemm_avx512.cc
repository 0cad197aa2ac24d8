// AVX-512 VNNI GEMM for packed weights and many activation rows (prefill).
// Compiled with AVX-512 enabled; no C++ library headers (see gemv_avx512.cc).
//
// Each thread takes 16 weight rows at a time and unpacks them, exactly, into
// a panel: the codes interleaved so that one zmm holds 4 consecutive codes of
// each of the 16 rows, and per 16 values each row's scale and offset. The
// GEMM then needs no horizontal sums: vpdpbusd multiplies a panel zmm with
// 4 activation bytes broadcast to every lane, so lane r accumulates row r.
// Per 16 values and activation row: 4 vpdpbusd, then the scale product and
// the offset term in fp32. The unpacking cost is shared by all M rows.

#include <immintrin.h>
#include <omp.h>

#include "engine/quant/i_quants_simd.h"
#include "engine/quant/k_quants_simd.h"
#include "engine/quant/legacy_simd.h"
#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant::avx512 {

namespace {

constexpr int kPanelRows = 16;
constexpr int kTileRows = 8;  // activation rows per register tile

struct Panel {
  uint32_t* codes;  // [K/4][16] 4 codes of each row
  float* scale;     // [K/16][16]
  float* offset;    // [K/16][16]
};

Panel PanelAt(uint8_t* base, int64_t K) {
  Panel p;
  p.codes = reinterpret_cast<uint32_t*>(base);
  p.scale = reinterpret_cast<float*>(base + 16 * K);
  p.offset = p.scale + K;
  return p;
}

// Unpacks `rows` (<= 16) rows of w into the panel; missing rows get zero
// scales and offsets (their lanes are computed but never stored).
template <class D>
void Pack(const uint8_t* w, int64_t row_bytes, int rows, int64_t K, Panel p) {
  const __m256i lanes = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
  const int64_t blocks = K / D::kElems;
  for (int r = 0; r < kPanelRows; ++r) {
    if (r >= rows) {
      for (int64_t h = 0; h < K / 16; ++h) {
        p.scale[h * 16 + r] = 0.0f;
        p.offset[h * 16 + r] = 0.0f;
      }
      for (int64_t g = 0; g < K / 4; ++g) p.codes[g * 16 + r] = 0;
      continue;
    }
    const uint8_t* row = w + r * row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* blk = row + b * D::kBytes;
      float scale[D::kElems / 16], offset[D::kElems / 16];
      D::Scales(blk, scale, offset);
      const int64_t h0 = b * (D::kElems / 16);
      for (int h = 0; h < D::kElems / 16; ++h) {
        p.scale[(h0 + h) * 16 + r] = scale[h];
        p.offset[(h0 + h) * 16 + r] = offset[h];
      }
      for (int c = 0; c < D::kElems / 32; ++c) {
        // 8 dwords of 4 codes, to 8 consecutive k-groups of column r.
        const int64_t g0 = (b * D::kElems + 32 * c) / 4;
        _mm256_i32scatter_epi32(p.codes + g0 * 16 + r, lanes, D::Codes(blk, c),
                                4);
      }
    }
  }
}

template <int T>
void PanelTile(const QuantizedActs& x, int64_t m0, int64_t K, const Panel& p,
               float* y, int64_t ldy, __mmask16 valid) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const int8_t* xq = x.q + m0 * K;
  const float* d4 = x.d4 + m0 * (K / 4);
  const float* s16 = x.sum16 + m0 * (K / 16);
  for (int64_t h = 0; h < K / 16; ++h) {
    __m512i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      const __m512i wv = _mm512_load_si512(p.codes + (4 * h + j) * 16);
      for (int t = 0; t < T; ++t) {
        int32_t four;
        __builtin_memcpy(&four, xq + t * K + 16 * h + 4 * j, 4);
        isum[t] = _mm512_dpbusd_epi32(isum[t], wv, _mm512_set1_epi32(four));
      }
    }
    const __m512 scv = _mm512_load_ps(p.scale + 16 * h);
    const __m512 offv = _mm512_load_ps(p.offset + 16 * h);
    for (int t = 0; t < T; ++t) {
      acc[t] = _mm512_fmadd_ps(
          _mm512_cvtepi32_ps(isum[t]),
          _mm512_mul_ps(scv, _mm512_set1_ps(d4[t * (K / 4) + 4 * h])), acc[t]);
      acc[t] =
          _mm512_fmadd_ps(offv, _mm512_set1_ps(s16[t * (K / 16) + h]), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * ldy, valid, acc[t]);
}

void PanelRows(const QuantizedActs& x, int64_t M, int64_t K, const Panel& p,
               float* y, int64_t ldy, __mmask16 valid) {
  int64_t m = 0;
  for (; m + kTileRows <= M; m += kTileRows)
    PanelTile<kTileRows>(x, m, K, p, y + m * ldy, ldy, valid);
  switch (M - m) {
    case 7:
      PanelTile<7>(x, m, K, p, y + m * ldy, ldy, valid);
      break;
    case 6:
      PanelTile<6>(x, m, K, p, y + m * ldy, ldy, valid);
      break;
    case 5:
      PanelTile<5>(x, m, K, p, y + m * ldy, ldy, valid);
      break;
    case 4:
      PanelTile<4>(x, m, K, p, y + m * ldy, ldy, valid);
      break;
    case 3:
      PanelTile<3>(x, m, K, p, y + m * ldy, ldy, valid);
      break;
    case 2:
      PanelTile<2>(x, m, K, p, y + m * ldy, ldy, valid);
      break;
    case 1:
      PanelTile<1>(x, m, K, p, y + m * ldy, ldy, valid);
      break;
  }
}

template <class D>
void Gemm(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* w,
          int64_t N, float* y, int64_t ldy, uint8_t* panels) {
  const int64_t row_bytes = K / D::kElems * D::kBytes;
  const int64_t panel_bytes = PackedGemmPanelBytes(K);
  const int64_t tiles = (N + kPanelRows - 1) / kPanelRows;
#pragma omp parallel
  {
    const Panel p = PanelAt(panels + omp_get_thread_num() * panel_bytes, K);
#pragma omp for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t n0 = tile * kPanelRows;
      const int rows =
          static_cast<int>(N - n0 < kPanelRows ? N - n0 : kPanelRows);
      Pack<D>(w + n0 * row_bytes, row_bytes, rows, K, p);
      PanelRows(x, M, K, p, y + n0, ldy,
                static_cast<__mmask16>((1u << rows) - 1));
    }
  }
}

}  // namespace

void PackedGemm(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
                const uint8_t* w, int64_t N, float* y, int64_t ldy,
                uint8_t* panels) {
  switch (type) {
    case kIdQ4_0:
      return Gemm<DecodeQ4_0>(x, M, K, w, N, y, ldy, panels);
    case kIdQ4_1:
      return Gemm<DecodeQ4_1>(x, M, K, w, N, y, ldy, panels);
    case kIdQ5_0:
      return Gemm<DecodeQ5_0>(x, M, K, w, N, y, ldy, panels);
    case kIdQ5_1:
      return Gemm<DecodeQ5_1>(x, M, K, w, N, y, ldy, panels);
    case kIdQ8_0:
      return Gemm<DecodeQ8_0>(x, M, K, w, N, y, ldy, panels);
    case kIdQ2_K:
      return Gemm<DecodeQ2_K>(x, M, K, w, N, y, ldy, panels);
    case kIdQ3_K:
      return Gemm<DecodeQ3_K>(x, M, K, w, N, y, ldy, panels);
    case kIdQ4_K:
      return Gemm<DecodeQ4_K>(x, M, K, w, N, y, ldy, panels);
    case kIdQ5_K:
      return Gemm<DecodeQ5_K>(x, M, K, w, N, y, ldy, panels);
    case kIdQ6_K:
      return Gemm<DecodeQ6_K>(x, M, K, w, N, y, ldy, panels);
    case kIdIQ4_NL:
      return Gemm<DecodeIQ4_NL>(x, M, K, w, N, y, ldy, panels);
    case kIdIQ4_XS:
      return Gemm<DecodeIQ4_XS>(x, M, K, w, N, y, ldy, panels);
  }
}

}  // namespace lumen::engine::quant::avx512
