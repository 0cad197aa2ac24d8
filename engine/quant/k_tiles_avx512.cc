// AVX-512 VNNI kernel for Q4_K and Q6_K weights in tiles (k_tiles.h), every
// M. Compiled with AVX-512 enabled and run only after the CPU check, so it
// includes no C++ library headers (see gemm_avx512.cc).
//
// A tile's span (256 values of 16 rows) is already in the panel's shape:
// one masked load of a code group gives 4 codes of each row (one byte each,
// lane r = row r) after a mask, and 4 more after a shift (Q6_K: OR-ed with
// their high bits). vpdpbusd multiplies each with 4 activation bytes
// broadcast to every lane, so lane r accumulates row r: no gather, no
// transpose and no unpacking per call. The scales come from the tile's
// transposed block heads. Per scale run (Q4_K 32 values, Q6_K 16) the fp32
// operations (order and operands) are those of the other AVX-512 kernels,
// so a row's result has the same bits as theirs.

#include <immintrin.h>
#include <omp.h>

#include "engine/quant/block_common.h"
#include "engine/quant/k_scales_avx512.h"
#include "engine/quant/k_tiles.h"
#include "engine/quant/panel_avx512.h"
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
inline void PrefetchToL2(const uint8_t* p, int64_t bytes) {
  for (int64_t b = 0; b < bytes; b += 64)
    _mm_prefetch(reinterpret_cast<const char*>(p + b), _MM_HINT_T1);
}

inline __m512i LoadLanes(const uint8_t* p, __mmask16 lanes) {
  return _mm512_maskz_loadu_epi32(lanes, p);
}

inline __m512i Low(__m512i v) {
  return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}
inline __m512i High(__m512i v) { return Low(_mm512_srli_epi16(v, 4)); }

inline __m512i Broadcast4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// One span of a tile: its scale runs, each as 4-code operands of 16 rows
// (the panel's groups) with the run's scale and offset.
struct Q4KSpan {
  static constexpr int64_t kBlockBytes = kQ4KBlockBytes;
  static constexpr int kRun = 32, kRuns = 8, kOperands = 8;
  const uint8_t* codes;
  int64_t group_bytes;
  __mmask16 lanes;
  Q45Heads heads;

  Q4KSpan(const uint8_t* span, int rows, __mmask16 lanes_)
      : codes(span + 16 * rows), group_bytes(4 * rows), lanes(lanes_) {
    heads = {LoadLanes(span, lanes), LoadLanes(span + group_bytes, lanes),
             LoadLanes(span + 2 * group_bytes, lanes),
             LoadLanes(span + 3 * group_bytes, lanes)};
  }
  // Operand k of run h: values 32h + 4k..
  void Operands(int h, __m512i op[kOperands]) const {
    for (int i = 0; i < 4; ++i) {
      const __m512i v = LoadLanes(codes + (4 * h + i) * group_bytes, lanes);
      op[2 * i] = Low(v);
      op[2 * i + 1] = High(v);
    }
  }
  void Scales(int h, __m512* scale, __m512* offset) const {
    Q45RunScales(heads, h, scale, offset);
  }
};

struct Q6KSpan {
  static constexpr int64_t kBlockBytes = kQ6KBlockBytes;
  static constexpr int kRun = 16, kRuns = 16, kOperands = 4;
  const uint8_t *scales, *low, *high;
  int64_t rows;
  __mmask16 lanes;
  __m512 d;

  Q6KSpan(const uint8_t* span, int rows_, __mmask16 lanes_)
      : scales(span + 2 * rows_),
        low(span + 18 * rows_),
        high(span + 146 * rows_),
        rows(rows_),
        lanes(lanes_),
        d(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes_, span))) {}
  // Operand k of run p: values 16p + 4k.., low nibble and high bits (at
  // bits 4-5; 16-bit shifts move other bytes' bits only outside them).
  void Operands(int p, __m512i op[kOperands]) const {
    const __m512i two = _mm512_set1_epi8(0x30);
    const __m512i hb = LoadLanes(high + p * 4 * rows, lanes);
    const __m512i l0 = LoadLanes(low + 2 * p * 4 * rows, lanes);
    const __m512i l1 = LoadLanes(low + (2 * p + 1) * 4 * rows, lanes);
    op[0] = _mm512_or_si512(Low(l0),
                            _mm512_and_si512(_mm512_slli_epi16(hb, 4), two));
    op[1] = _mm512_or_si512(High(l0),
                            _mm512_and_si512(_mm512_slli_epi16(hb, 2), two));
    op[2] = _mm512_or_si512(Low(l1), _mm512_and_si512(hb, two));
    op[3] = _mm512_or_si512(High(l1),
                            _mm512_and_si512(_mm512_srli_epi16(hb, 2), two));
  }
  // The products of RowScales<DecodeQ6_K> (gemm_avx512.cc).
  void Scales(int p, __m512* scale, __m512* offset) const {
    const __m128i s8 = _mm_maskz_loadu_epi8(lanes, scales + p * rows);
    *scale = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(s8)), d);
    *offset = _mm512_mul_ps(*scale, _mm512_set1_ps(-32.0f));
  }
};

template <class Span>
const float* RunSums(const QuantizedActs& x) {
  return Span::kRun == 32 ? x.sum32 : x.sum16;
}

// T activation rows from m0 against one tile of `rows` weight rows.
template <class Span, int T>
void TileRows(const QuantizedActs& x, int64_t m0, int64_t K,
              const uint8_t* tile, int rows, float* y, int64_t ldy) {
  constexpr int kRun = Span::kRun;
  const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
  const int64_t span_bytes = rows * Span::kBlockBytes;
  const float* sums = RunSums<Span>(x);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < K / 256; ++s) {
    const uint8_t* span_base = tile + s * span_bytes;
    Prefetch(span_base + kPrefetchSpans * span_bytes, span_bytes);
    const Span span(span_base, rows, lanes);
    for (int h = 0; h < Span::kRuns; ++h) {
      __m512i op[Span::kOperands];
      span.Operands(h, op);
      __m512i isum[T];
      for (int t = 0; t < T; ++t) {
        const int8_t* xq = x.q + (m0 + t) * K + 256 * s + kRun * h;
        isum[t] = _mm512_setzero_si512();
        for (int k = 0; k < Span::kOperands; ++k)
          isum[t] = _mm512_dpbusd_epi32(isum[t], op[k], Broadcast4(xq + 4 * k));
      }
      __m512 scale, offset;
      span.Scales(h, &scale, &offset);
      for (int t = 0; t < T; ++t) {
        const float d = x.d4[(m0 + t) * (K / 4) + 64 * s + kRun / 4 * h];
        const float sum = sums[(m0 + t) * (K / kRun) + 256 / kRun * s + h];
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

template <class Span>
void Direct(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* tile,
            int rows, float* y, int64_t ldy) {
  int64_t m = 0;
  for (; m + 8 <= M; m += 8) TileRows<Span, 8>(x, m, K, tile, rows, y, ldy);
  switch (M - m) {
    case 7:
      return TileRows<Span, 7>(x, m, K, tile, rows, y, ldy);
    case 6:
      return TileRows<Span, 6>(x, m, K, tile, rows, y, ldy);
    case 5:
      return TileRows<Span, 5>(x, m, K, tile, rows, y, ldy);
    case 4:
      return TileRows<Span, 4>(x, m, K, tile, rows, y, ldy);
    case 3:
      return TileRows<Span, 3>(x, m, K, tile, rows, y, ldy);
    case 2:
      return TileRows<Span, 2>(x, m, K, tile, rows, y, ldy);
    case 1:
      return TileRows<Span, 1>(x, m, K, tile, rows, y, ldy);
  }
}

// The panel of one tile: run h's operands are panel groups kRun / 4 * h..,
// its scale and offset serve each of its 16-value parts. Missing rows load
// as zero (zero codes and scales).
template <class Span>
void TileToPanel(const uint8_t* tile, int rows, int64_t K, const Panel& p) {
  constexpr int kRun = Span::kRun;
  const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
  const int64_t span_bytes = rows * Span::kBlockBytes;
  for (int64_t s = 0; s < K / 256; ++s) {
    const uint8_t* span_base = tile + s * span_bytes;
    // The last spans ask for the thread's next tile, which then arrives
    // while PanelRows computes; into L2, where it does not evict the panel.
    PrefetchToL2(span_base + kPrefetchSpans * span_bytes, span_bytes);
    const Span span(span_base, rows, lanes);
    for (int h = 0; h < Span::kRuns; ++h) {
      __m512 scale, offset;
      span.Scales(h, &scale, &offset);
      for (int part = 0; part < kRun / 16; ++part) {
        const int64_t at = (16 * s + kRun / 16 * h + part) * 16;
        _mm512_store_ps(p.scale + at, scale);
        _mm512_store_ps(p.offset + at, offset);
      }
      __m512i op[Span::kOperands];
      span.Operands(h, op);
      for (int k = 0; k < Span::kOperands; ++k)
        _mm512_store_si512(p.codes + (64 * s + kRun / 4 * h + k) * 16, op[k]);
    }
  }
}

template <class Span>
void Gemm(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* w,
          int64_t N, float* y, int64_t ldy, uint8_t* panels, int slots,
          bool direct_ok) {
  const int64_t row_bytes = K / 256 * Span::kBlockBytes;
  const int64_t tiles = (N + kInterleaveRows - 1) / kInterleaveRows;
  auto rows_of = [&](int64_t n0) {
    return static_cast<int>(N - n0 < kInterleaveRows ? N - n0
                                                     : kInterleaveRows);
  };
  if (direct_ok && M <= kDirectRows) {
#pragma omp parallel for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t n0 = tile * kInterleaveRows;
      Direct<Span>(x, M, K, w + n0 * row_bytes, rows_of(n0), y + n0, ldy);
    }
    return;
  }
  const int64_t panel_bytes = PackedPanelBytes(K);
  const int threads =
      omp_get_max_threads() < slots ? omp_get_max_threads() : slots;
#pragma omp parallel num_threads(threads)
  {
    const Panel p = PanelAt(panels + omp_get_thread_num() * panel_bytes, K);
    for (int64_t m0 = 0; m0 < M; m0 += kPanelPassRows) {
      const int64_t rows_m = M - m0 < kPanelPassRows ? M - m0 : kPanelPassRows;
      const QuantizedActs xm = ActsFrom(x, m0, K);
      // Each thread keeps its tiles in every pass (static), and a pass
      // writes only its own rows of y: no barrier between passes.
#pragma omp for schedule(static) nowait
      for (int64_t tile = 0; tile < tiles; ++tile) {
        const int64_t n0 = tile * kInterleaveRows;
        const int rows = rows_of(n0);
        TileToPanel<Span>(w + n0 * row_bytes, rows, K, p);
        PanelRows<Span::kRun>(xm, rows_m, K, p, y + m0 * ldy + n0, ldy,
                              static_cast<__mmask16>((1u << rows) - 1));
      }
    }
  }
}

}  // namespace

void TiledGemm(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
               const uint8_t* w, int64_t N, float* y, int64_t ldy,
               uint8_t* panels, int slots, bool direct_ok) {
  if (type == kIdQ4_K) {
    Gemm<Q4KSpan>(x, M, K, w, N, y, ldy, panels, slots, direct_ok);
  } else {
    Gemm<Q6KSpan>(x, M, K, w, N, y, ldy, panels, slots, direct_ok);
  }
}

}  // namespace lumen::engine::quant::avx512
