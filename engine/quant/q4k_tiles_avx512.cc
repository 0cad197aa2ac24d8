// AVX-512 VNNI kernel for Q4_K weights in tiles (q4k_tiles.h), every M.
// Compiled with AVX-512 enabled and run only after the CPU check, so it
// includes no C++ library headers (see gemm_avx512.cc).
//
// A tile's span (256 values of 16 rows) is already in the panel's shape:
// one load of code group j, masked, gives values 8j..8j+3 of each row (one
// byte each, lane r = row r) and, shifted, values 8j+4..8j+7. vpdpbusd
// multiplies each with 4 activation bytes broadcast to every lane, so lane
// r accumulates row r: no gather, no transpose and no unpacking per call,
// at every M. The scales come from the tile's pre-transposed block heads.
// Per 32-value run the fp32 operations (order and operands) are those of
// the other AVX-512 kernels, so a row's result has the same bits as theirs.

#include <immintrin.h>
#include <omp.h>

#include "engine/quant/block_common.h"
#include "engine/quant/k_scales_avx512.h"
#include "engine/quant/panel_avx512.h"
#include "engine/quant/q4k_tiles.h"
#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant::avx512 {

namespace {

// Up to this many activation rows the kernel reads the tile itself; above,
// it fills a panel from the tile once and runs PanelRows (panel_avx512.h)
// over it, which keeps the unpacked codes and scales for all M rows.
constexpr int kDirectRows = 16;
// How far ahead a thread prefetches its weight stream, in spans. Its tiles
// lie back to back, so the stream runs on into its next tile.
constexpr int kPrefetchSpans = 4;

inline void Prefetch(const uint8_t* p, int64_t bytes) {
  for (int64_t b = 0; b < bytes; b += 64)
    _mm_prefetch(reinterpret_cast<const char*>(p + b), _MM_HINT_T0);
}

inline __m512i LoadLanes(const uint8_t* p, __mmask16 lanes) {
  return _mm512_maskz_loadu_epi32(lanes, p);
}

// T activation rows from m0 against one tile of `rows` weight rows.
template <int T>
void TileRows(const QuantizedActs& x, int64_t m0, int64_t K,
              const uint8_t* tile, int rows, float* y, int64_t ldy) {
  const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
  const int64_t span_bytes = rows * kQ4KBlockBytes, group_bytes = 4 * rows;
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < K / 256; ++s) {
    const uint8_t* span = tile + s * span_bytes;
    Prefetch(span + kPrefetchSpans * span_bytes, span_bytes);
    const Q45Heads heads{LoadLanes(span, lanes),
                         LoadLanes(span + group_bytes, lanes),
                         LoadLanes(span + 2 * group_bytes, lanes),
                         LoadLanes(span + 3 * group_bytes, lanes)};
    const uint8_t* codes = span + 4 * group_bytes;
    for (int h = 0; h < 8; ++h) {  // 32-value runs
      __m512i isum[T];
      for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
      for (int i = 0; i < 4; ++i) {
        const int g = 4 * h + i;
        const __m512i v = LoadLanes(codes + g * group_bytes, lanes);
        const __m512i lo = _mm512_and_si512(v, nibble);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
        for (int t = 0; t < T; ++t) {
          const int8_t* xq = x.q + (m0 + t) * K + 256 * s + 8 * g;
          int32_t a, b;
          __builtin_memcpy(&a, xq, 4);
          __builtin_memcpy(&b, xq + 4, 4);
          isum[t] = _mm512_dpbusd_epi32(isum[t], lo, _mm512_set1_epi32(a));
          isum[t] = _mm512_dpbusd_epi32(isum[t], hi, _mm512_set1_epi32(b));
        }
      }
      __m512 scale, offset;
      Q45RunScales(heads, h, &scale, &offset);
      for (int t = 0; t < T; ++t) {
        const float d = x.d4[(m0 + t) * (K / 4) + 64 * s + 8 * h];
        const float sum = x.sum32[(m0 + t) * (K / 32) + 8 * s + h];
        acc[t] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]),
                            _mm512_mul_ps(scale, _mm512_set1_ps(d)), acc[t]);
        acc[t] = _mm512_fmadd_ps(offset, _mm512_set1_ps(sum), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t)
    _mm512_mask_storeu_ps(y + (m0 + t) * ldy, lanes, acc[t]);
}

void Direct(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* tile,
            int rows, float* y, int64_t ldy) {
  int64_t m = 0;
  for (; m + 8 <= M; m += 8) TileRows<8>(x, m, K, tile, rows, y, ldy);
  switch (M - m) {
    case 7:
      return TileRows<7>(x, m, K, tile, rows, y, ldy);
    case 6:
      return TileRows<6>(x, m, K, tile, rows, y, ldy);
    case 5:
      return TileRows<5>(x, m, K, tile, rows, y, ldy);
    case 4:
      return TileRows<4>(x, m, K, tile, rows, y, ldy);
    case 3:
      return TileRows<3>(x, m, K, tile, rows, y, ldy);
    case 2:
      return TileRows<2>(x, m, K, tile, rows, y, ldy);
    case 1:
      return TileRows<1>(x, m, K, tile, rows, y, ldy);
  }
}

// The panel of one tile: group j's low and high nibbles are panel groups
// 2j and 2j + 1; each run's scale and offset serve its two 16-value halves.
// Missing rows load as zero (zero codes and scales).
void TileToPanel(const uint8_t* tile, int rows, int64_t K, const Panel& p) {
  const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
  const int64_t span_bytes = rows * kQ4KBlockBytes, group_bytes = 4 * rows;
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  for (int64_t s = 0; s < K / 256; ++s) {
    const uint8_t* span = tile + s * span_bytes;
    // The last spans ask for the thread's next tile, which then arrives
    // while PanelRows computes.
    Prefetch(span + kPrefetchSpans * span_bytes, span_bytes);
    const Q45Heads heads{LoadLanes(span, lanes),
                         LoadLanes(span + group_bytes, lanes),
                         LoadLanes(span + 2 * group_bytes, lanes),
                         LoadLanes(span + 3 * group_bytes, lanes)};
    for (int h = 0; h < 8; ++h) {
      __m512 scale, offset;
      Q45RunScales(heads, h, &scale, &offset);
      for (int half = 0; half < 2; ++half) {
        _mm512_store_ps(p.scale + (16 * s + 2 * h + half) * 16, scale);
        _mm512_store_ps(p.offset + (16 * s + 2 * h + half) * 16, offset);
      }
    }
    const uint8_t* codes = span + 4 * group_bytes;
    for (int j = 0; j < 32; ++j) {
      const __m512i v = LoadLanes(codes + j * group_bytes, lanes);
      _mm512_store_si512(p.codes + (64 * s + 2 * j) * 16,
                         _mm512_and_si512(v, nibble));
      _mm512_store_si512(p.codes + (64 * s + 2 * j + 1) * 16,
                         _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble));
    }
  }
}

}  // namespace

void TiledQ4KGemm(const QuantizedActs& x, int64_t M, int64_t K,
                  const uint8_t* w, int64_t N, float* y, int64_t ldy,
                  uint8_t* panels, int slots) {
  const int64_t row_bytes = K / 256 * kQ4KBlockBytes;
  const int64_t tiles = (N + kInterleaveRows - 1) / kInterleaveRows;
  auto rows_of = [&](int64_t n0) {
    return static_cast<int>(N - n0 < kInterleaveRows ? N - n0
                                                     : kInterleaveRows);
  };
  if (M <= kDirectRows) {
#pragma omp parallel for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t n0 = tile * kInterleaveRows;
      Direct(x, M, K, w + n0 * row_bytes, rows_of(n0), y + n0, ldy);
    }
    return;
  }
  const int64_t panel_bytes = PackedPanelBytes(K);
  const int threads =
      omp_get_max_threads() < slots ? omp_get_max_threads() : slots;
#pragma omp parallel num_threads(threads)
  {
    const Panel p = PanelAt(panels + omp_get_thread_num() * panel_bytes, K);
#pragma omp for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t n0 = tile * kInterleaveRows;
      const int rows = rows_of(n0);
      TileToPanel(w + n0 * row_bytes, rows, K, p);
      PanelRows<32>(x, M, K, p, y + n0, ldy,
                    static_cast<__mmask16>((1u << rows) - 1));
    }
  }
}

}  // namespace lumen::engine::quant::avx512
