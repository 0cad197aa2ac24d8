// AVX-512 VNNI kernel for Q4_K, Q6_K and Q8_0 weights in tiles (k_tiles.h),
// every M (Q8_0 at the end of this file). Compiled with AVX-512 enabled and run
// only after the CPU check, so it includes no C++ library headers (see
// gemm_avx512.cc).
//
// A tile's span (256 values of 16 rows) is already in the panel's shape:
// one masked load of a code group gives 4 codes of each row (one byte each,
// lane r = row r) after a mask, and 4 more after a shift (Q6_K: OR-ed with
// their high bits). vpdpbusd multiplies each with 4 activation bytes
// broadcast to every lane, so lane r accumulates row r: no gather, no
// transpose and no unpacking per call.
//
// For Q4_K and Q6_K the activations are quantized per 256-value span
// (QuantizedActs' span fields, like llama.cpp's Q8_K), so a span's
// arithmetic stays in integers:
// per scale run (Q4_K 32 values, Q6_K 16) the run's code products times its
// integer sub-block scale (vpmulld), and per span the sub-block mins (Q4_K)
// or the codes' offset of 32 (Q6_K) times the activations' integer sums
// (vpdpwssd on int16 pairs). Two conversions and two fp32 FMAs per span
// and row remain, where a per-32 activation scale needed them per run.
// Integer sums are exact in any order, and the fp32 operations per span are
// the same for the direct kernel and the panel: a row's result has the same
// bits whatever M is.

#include <immintrin.h>
#include <omp.h>

#include "engine/quant/block_common.h"
#include "engine/quant/k_scales_avx512.h"
#include "engine/quant/k_tiles.h"
#include "engine/quant/panel_avx512.h"
#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant::avx512 {

namespace {

// How far ahead a thread prefetches its weight stream, in spans. Its tiles
// lie back to back, so the stream runs on into its next tile. Into L2, not
// L1: prefetching into L1 made decode (M=1) a third slower on Zen 5, as
// measured with `lumen bench engine` on a Q4_K_M file (265-316 against
// 424-482 tokens/s, alternated runs); presumably L1's fill buffers, not
// DRAM, then bound the misses in flight.
constexpr int kPrefetchSpans = 4;

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

inline __m512i Broadcast4(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Two int32 lane vectors of small values as int16 pairs: lane r = a[r] |
// b[r] << 16 (vpdpwssd's operand).
inline __m512i PairLanes(__m512i a, __m512i b) {
  return _mm512_or_si512(_mm512_and_si512(a, _mm512_set1_epi32(0xFFFF)),
                         _mm512_slli_epi32(b, 16));
}

// One span of a tile, as the kernel consumes it:
//   Operands(h, op): run h's kOperands 4-code operands of the 16 rows;
//   RunScale(h): run h's integer sub-block scale per lane;
//   Pair(i): int16 pairs per lane, dotted with the activations' int16 sums
//     over kPairRun values (pair i: sums 2i and 2i + 1 of the span);
//   Scale(), PairScale(): the fp32 factors of the two integer sums.
// A span's value for a row is then Scale * sum_h RunScale(h) * dot(run h)
// + PairScale * sum_i Pair(i) . sums(i), times the activations' d256.
struct Q4KSpan {
  static constexpr uint32_t kType = kIdQ4_K;
  static constexpr int64_t kBlockBytes = kQ4KBlockBytes;
  static constexpr int kRun = 32, kRuns = 8, kOperands = 8;
  static constexpr int kPairRun = 32, kPairs = 4;  // mins times bsum32
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
  __m512i RunScale(int h) const {
    __m512i s6, m6;
    Q45RunSixBits(heads, h, &s6, &m6);
    return s6;
  }
  __m512i Pair(int i) const {
    __m512i s6, m6a, m6b;
    Q45RunSixBits(heads, 2 * i, &s6, &m6a);
    Q45RunSixBits(heads, 2 * i + 1, &s6, &m6b);
    return PairLanes(m6a, m6b);
  }
  __m512 Scale() const { return Q45D(heads); }
  __m512 PairScale() const {
    return _mm512_sub_ps(_mm512_setzero_ps(), Q45Dmin(heads));
  }
};

struct Q6KSpan {
  static constexpr uint32_t kType = kIdQ6_K;
  static constexpr int64_t kBlockBytes = kQ6KBlockBytes;
  static constexpr int kRun = 16, kRuns = 16, kOperands = 4;
  static constexpr int kPairRun = 16, kPairs = 8;  // scales times bsum16
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
  // bits 4-5; 16-bit shifts move other bytes' bits only outside them). The
  // codes are unsigned (value + 32); PairScale takes the 32 back off.
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
  __m512i RunScale(int p) const {
    return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(lanes, scales + p * rows));
  }
  __m512i Pair(int i) const {
    return PairLanes(RunScale(2 * i), RunScale(2 * i + 1));
  }
  __m512 Scale() const { return d; }
  __m512 PairScale() const { return _mm512_mul_ps(d, _mm512_set1_ps(-32.0f)); }
};

// A span decoded into the panel (TileToPanel): the same interface, loads.
// Per span the panel holds 64 operand zmms (PanelAt's codes), then kRuns
// scale zmms, kPairs pair zmms, Scale and PairScale in its meta area (32
// zmms per span in PanelAt's scale and offset arrays).
constexpr int64_t kMetaZmmsPerSpan = 32;
// ... which is exactly PanelAt's scale and offset arrays for a span (two
// fp32 per 16-value part of 16 rows): PackedPanelBytes sizes both layouts.
static_assert(kMetaZmmsPerSpan * 64 == 2 * (256 / 16) * 16 * sizeof(float));

template <class Span>
struct PanelSpan {
  static constexpr int kRun = Span::kRun, kRuns = Span::kRuns,
                       kOperands = Span::kOperands;
  static constexpr int kPairRun = Span::kPairRun, kPairs = Span::kPairs;
  static_assert(kRuns + kPairs + 2 <= kMetaZmmsPerSpan);
  const __m512i* codes;
  const __m512i* meta;

  PanelSpan(const Panel& p, int64_t s)
      : codes(reinterpret_cast<const __m512i*>(p.codes) + 64 * s),
        meta(reinterpret_cast<const __m512i*>(p.scale) + kMetaZmmsPerSpan * s) {
  }
  void Operands(int h, __m512i op[kOperands]) const {
    for (int k = 0; k < kOperands; ++k)
      op[k] = _mm512_load_si512(codes + kOperands * h + k);
  }
  __m512i RunScale(int h) const { return _mm512_load_si512(meta + h); }
  __m512i Pair(int i) const { return _mm512_load_si512(meta + kRuns + i); }
  __m512 Scale() const {
    return _mm512_castsi512_ps(_mm512_load_si512(meta + kRuns + kPairs));
  }
  __m512 PairScale() const {
    return _mm512_castsi512_ps(_mm512_load_si512(meta + kRuns + kPairs + 1));
  }
};

// Adds span s of T activation rows from m0 (x's span fields) to acc. The
// row loops are unrolled so that each row's sums stay in registers (GCC
// leaves them rolled, and the sums on the stack, without the pragmas).
template <class Span, int T>
inline void AccumulateSpan(const Span& span, const QuantizedActs& x, int64_t m0,
                           int64_t K, int64_t s, __m512 acc[T]) {
  constexpr int kRun = Span::kRun;
  __m512i iacc[T];
  for (int t = 0; t < T; ++t) iacc[t] = _mm512_setzero_si512();
  for (int h = 0; h < Span::kRuns; ++h) {
    __m512i op[Span::kOperands];
    span.Operands(h, op);
    const int8_t* xq = x.q256 + m0 * K + 256 * s + kRun * h;
    __m512i isum[T];
    // Operand-major, so that consecutive vpdpbusd are independent (one
    // row's chain of kOperands would serialize on their latency).
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      isum[t] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), op[0],
                                    Broadcast4(xq + t * K));
#pragma GCC unroll 8
    for (int k = 1; k < Span::kOperands; ++k) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t)
        isum[t] =
            _mm512_dpbusd_epi32(isum[t], op[k], Broadcast4(xq + t * K + 4 * k));
    }
    const __m512i run_scale = span.RunScale(h);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      iacc[t] =
          _mm512_add_epi32(iacc[t], _mm512_mullo_epi32(isum[t], run_scale));
  }
  const int16_t* sums = Span::kPairRun == 32 ? x.bsum32 : x.bsum16;
  constexpr int64_t kSumsPerSpan = 256 / Span::kPairRun;
  __m512i ipair[T];
  for (int t = 0; t < T; ++t) ipair[t] = _mm512_setzero_si512();
  for (int i = 0; i < Span::kPairs; ++i) {
    const __m512i pair = span.Pair(i);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const int16_t* b =
          sums + (m0 + t) * (K / Span::kPairRun) + kSumsPerSpan * s + 2 * i;
      ipair[t] = _mm512_dpwssd_epi32(ipair[t], pair, Broadcast4(b));
    }
  }
  const __m512 scale = span.Scale(), pair_scale = span.PairScale();
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    const __m512 dx = _mm512_set1_ps(x.d256[(m0 + t) * (K / 256) + s]);
    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[t]),
                             _mm512_mul_ps(scale, dx), acc[t]);
    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ipair[t]),
                             _mm512_mul_ps(pair_scale, dx), acc[t]);
  }
}

// T activation rows from m0 against one tile of `rows` weight rows.
template <class Span, int T>
void TileRows(const QuantizedActs& x, int64_t m0, int64_t K,
              const uint8_t* tile, int rows, float* y, int64_t ldy) {
  const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
  const int64_t span_bytes = rows * Span::kBlockBytes;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < K / 256; ++s) {
    const uint8_t* span_base = tile + s * span_bytes;
    PrefetchToL2(span_base + kPrefetchSpans * span_bytes, span_bytes);
    AccumulateSpan<Span, T>(Span(span_base, rows, lanes), x, m0, K, s, acc);
  }
  for (int t = 0; t < T; ++t)
    _mm512_mask_storeu_ps(y + (m0 + t) * ldy, lanes, acc[t]);
}

// T activation rows from m0 against a tile decoded into the panel.
template <class Span, int T>
void PanelTileRows(const QuantizedActs& x, int64_t m0, int64_t K,
                   const Panel& p, float* y, int64_t ldy, __mmask16 lanes) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < K / 256; ++s)
    AccumulateSpan<PanelSpan<Span>, T>(PanelSpan<Span>(p, s), x, m0, K, s, acc);
  for (int t = 0; t < T; ++t)
    _mm512_mask_storeu_ps(y + (m0 + t) * ldy, lanes, acc[t]);
}

// Decodes every span of one tile into the panel (PanelSpan's layout).
// Missing rows load as zero (zero codes and scales).
template <class Span>
void TileToPanel(const uint8_t* tile, int rows, int64_t K, const Panel& p) {
  const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
  const int64_t span_bytes = rows * Span::kBlockBytes;
  for (int64_t s = 0; s < K / 256; ++s) {
    const uint8_t* span_base = tile + s * span_bytes;
    // The last spans ask for the thread's next tile, which then arrives
    // while the rows run; into L2, where it does not evict the panel.
    PrefetchToL2(span_base + kPrefetchSpans * span_bytes, span_bytes);
    const Span span(span_base, rows, lanes);
    __m512i* codes = reinterpret_cast<__m512i*>(p.codes) + 64 * s;
    __m512i* meta = reinterpret_cast<__m512i*>(p.scale) + kMetaZmmsPerSpan * s;
    for (int h = 0; h < Span::kRuns; ++h) {
      __m512i op[Span::kOperands];
      span.Operands(h, op);
      for (int k = 0; k < Span::kOperands; ++k)
        _mm512_store_si512(codes + Span::kOperands * h + k, op[k]);
      _mm512_store_si512(meta + h, span.RunScale(h));
    }
    for (int i = 0; i < Span::kPairs; ++i)
      _mm512_store_si512(meta + Span::kRuns + i, span.Pair(i));
    _mm512_store_si512(meta + Span::kRuns + Span::kPairs,
                       _mm512_castps_si512(span.Scale()));
    _mm512_store_si512(meta + Span::kRuns + Span::kPairs + 1,
                       _mm512_castps_si512(span.PairScale()));
  }
}

// Runs every tile of W (N rows of row_bytes, in tiles of kInterleaveRows):
// up to direct_rows activation rows (and direct_ok), direct(tile, rows,
// n0) on each tile; above, per pass of kPanelPassRows activation rows from
// m0, paneled(panel, tile, rows, n0, m0, rows_m), with the calling
// thread's panel (at most `slots` threads). A pass runs without a barrier
// after it, so paneled must write only rows [m0, m0 + rows_m) of its
// tile's columns of y.
template <class Direct, class Paneled>
void ForEachTile(int64_t M, int64_t N, const uint8_t* w, int64_t row_bytes,
                 int64_t K, uint8_t* panels, int slots, bool direct_ok,
                 int direct_rows, Direct direct, Paneled paneled) {
  const int64_t tiles = (N + kInterleaveRows - 1) / kInterleaveRows;
  auto rows_of = [&](int64_t n0) {
    return static_cast<int>(N - n0 < kInterleaveRows ? N - n0
                                                     : kInterleaveRows);
  };
  if (direct_ok && M <= direct_rows) {
#pragma omp parallel for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t n0 = tile * kInterleaveRows;
      direct(w + n0 * row_bytes, rows_of(n0), n0);
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
      // Each thread keeps its tiles in every pass (static), and a pass
      // writes only its own rows of y: no barrier between passes.
#pragma omp for schedule(static) nowait
      for (int64_t tile = 0; tile < tiles; ++tile) {
        const int64_t n0 = tile * kInterleaveRows;
        paneled(p, w + n0 * row_bytes, rows_of(n0), n0, m0, rows_m);
      }
    }
  }
}

template <class Span>
void Gemm(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* w,
          int64_t N, float* y, int64_t ldy, uint8_t* panels, int slots,
          bool direct_ok) {
  ForEachTile(
      M, N, w, K / 256 * Span::kBlockBytes, K, panels, slots, direct_ok,
      TileDirectRows(Span::kType),
      [&](const uint8_t* tile, int rows, int64_t n0) {
        InEights(M, [&]<int T>(int64_t m) {
          TileRows<Span, T>(x, m, K, tile, rows, y + n0, ldy);
        });
      },
      [&](const Panel& p, const uint8_t* tile, int rows, int64_t n0, int64_t m0,
          int64_t rows_m) {
        const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
        TileToPanel<Span>(tile, rows, K, p);
        InEights(rows_m, [&]<int T>(int64_t m) {
          PanelTileRows<Span, T>(x, m0 + m, K, p, y + n0, ldy, lanes);
        });
      });
}

// ---- Q8_0 tiles ----
//
// A Q8_0 tile holds the unpacking kernel's panel operands already (code
// dwords as value + 128, 16 rows to a zmm, and the rows' fp16 d). Up to
// TileDirectRows (8) activation rows read it in place; more rows copy it into
// the panel and run PanelTile, which measured 10-25% faster at 64-256 rows than
// reading the tile in place (gemm_bench, one thread, CPU time), and faster
// at 16 rows too: `lumen bench engine` decode 16 on the 110M Q8_0 file ran
// at 954-1082 tokens/s against 950-966 with the tiles read in place up to
// 16 rows (3 alternated runs, Zen 5). Either way
// the activations are the per-32 ones, and per block and row the integer
// sum starts at the zero term (zsum32) and takes one conversion and one
// fp32 FMA with d_w * d_x, as PanelTile does: a row's result has the
// unpacking kernel's bits at every M, on rows interleaved or not.

// T activation rows from m0 against one Q8_0 tile of `rows` weight rows.
template <int T>
void Q8TileRows(const QuantizedActs& x, int64_t m0, int64_t K,
                const uint8_t* tile, int rows, float* y, int64_t ldy) {
  const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
  const int64_t span_bytes = rows * kQ8_0SpanBytes, group_bytes = 4 * rows;
  // Row t of each activation array is one index away: t * K / 8 bytes for
  // zsum32 (K / 32 int32), times 8 for q (K int8) and d4 (K / 4 float). With
  // the three indexed separately, GCC spent about 220 scalar instructions
  // (addresses, spills) per block of 64 vpdpbusd at T = 8; this way about
  // 100 (objdump).
  int64_t row8[T];
  for (int t = 0; t < T; ++t) row8[t] = t * (K / 8);
  const char* xb = reinterpret_cast<const char*>(x.q + m0 * K);
  const char* db = reinterpret_cast<const char*>(x.d4 + m0 * (K / 4));
  const char* zb = reinterpret_cast<const char*>(x.zsum32 + m0 * (K / 32));
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < K / 256; ++s) {
    const uint8_t* span = tile + s * span_bytes;
    PrefetchToL2(span + kPrefetchSpans * span_bytes, span_bytes);
    const uint8_t* codes = span + 16 * rows;
    for (int b = 0; b < 8; ++b) {
      __m512i isum[T];
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        int32_t z;
        __builtin_memcpy(&z, zb + row8[t], 4);
        isum[t] = _mm512_set1_epi32(z);
      }
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        const __m512i op = LoadLanes(codes + k * group_bytes, lanes);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          isum[t] = _mm512_dpbusd_epi32(isum[t], op,
                                        Broadcast4(xb + 8 * row8[t] + 4 * k));
        }
      }
      const __m512 dw =
          _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes, span + 2 * rows * b));
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        float dx;
        __builtin_memcpy(&dx, db + 8 * row8[t], 4);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]),
                                 _mm512_mul_ps(dw, _mm512_set1_ps(dx)), acc[t]);
      }
      codes += 8 * group_bytes;
      xb += 32;
      db += 32;  // 8 floats of d4 per block
      zb += 4;
    }
  }
  for (int t = 0; t < T; ++t)
    _mm512_mask_storeu_ps(y + (m0 + t) * ldy, lanes, acc[t]);
}

// Copies a Q8_0 tile into the panel PanelTile reads: the code dwords as
// they are, d as fp32 (at the first of each block's two 16-value entries).
void Q8TileToPanel(const uint8_t* tile, int rows, int64_t K, const Panel& p) {
  const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
  const int64_t span_bytes = rows * kQ8_0SpanBytes, group_bytes = 4 * rows;
  for (int64_t s = 0; s < K / 256; ++s) {
    const uint8_t* span = tile + s * span_bytes;
    PrefetchToL2(span + kPrefetchSpans * span_bytes, span_bytes);
    for (int b = 0; b < 8; ++b) {
      const int64_t block = 8 * s + b;
      _mm512_store_ps(p.scale + 2 * block * 16,
                      _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(
                          lanes, span + 2 * rows * b)));
    }
    const uint8_t* codes = span + 16 * rows;
    for (int g = 0; g < 64; ++g) {
      _mm512_store_si512(p.codes + (64 * s + g) * 16,
                         LoadLanes(codes + g * group_bytes, lanes));
    }
  }
}

void Q8Gemm(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* w,
            int64_t N, float* y, int64_t ldy, uint8_t* panels, int slots,
            bool direct_ok) {
  ForEachTile(
      M, N, w, K / 256 * kQ8_0SpanBytes, K, panels, slots, direct_ok,
      TileDirectRows(kIdQ8_0),
      [&](const uint8_t* tile, int rows, int64_t n0) {
        InEights(M, [&]<int T>(int64_t m) {
          Q8TileRows<T>(x, m, K, tile, rows, y + n0, ldy);
        });
      },
      [&](const Panel& p, const uint8_t* tile, int rows, int64_t n0, int64_t m0,
          int64_t rows_m) {
        Q8TileToPanel(tile, rows, K, p);
        PanelRows<32, 0>(ActsFrom(x, m0, K), rows_m, K, p, y + m0 * ldy + n0,
                         ldy, static_cast<__mmask16>((1u << rows) - 1));
      });
}

}  // namespace

void TiledGemm(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
               const uint8_t* w, int64_t N, float* y, int64_t ldy,
               uint8_t* panels, int slots, bool direct_ok) {
  if (type == kIdQ4_K) {
    Gemm<Q4KSpan>(x, M, K, w, N, y, ldy, panels, slots, direct_ok);
  } else if (type == kIdQ6_K) {
    Gemm<Q6KSpan>(x, M, K, w, N, y, ldy, panels, slots, direct_ok);
  } else {
    Q8Gemm(x, M, K, w, N, y, ldy, panels, slots, direct_ok);
  }
}

}  // namespace lumen::engine::quant::avx512
