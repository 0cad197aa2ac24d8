// AVX-512 VNNI kernel for packed weights, every M (quant_kernels.h). This
// file is compiled with AVX-512 enabled and runs only after the CPU check,
// so it includes no C++ library headers (an inline library function
// compiled here could be merged into code that runs on AVX2-only CPUs).
//
// Each thread takes 16 weight rows at a time and unpacks them, exactly, into
// a panel (256 values of 16 rows at a time, transposed in registers): the codes
// interleaved so that one zmm holds 4 consecutive codes of each of the 16 rows,
// and per 16 values each row's scale and offset. The GEMM then needs no
// horizontal sums: vpdpbusd multiplies a panel zmm with 4 activation bytes
// broadcast to every lane, so lane r accumulates row r. Per scale run (16
// or 32 values, ScaleRun) and activation row: 4 or 8 vpdpbusd, then the
// scale product and the offset term in fp32 (the types whose offset is a
// fixed code start the integer sum at it instead: kZeroShiftOf). The unpacking
// cost is shared by all M rows, and each row's fp32 operations are the same
// whatever M is.

#include <immintrin.h>
#include <omp.h>

#include "engine/quant/i_quants_simd.h"
#include "engine/quant/k_quants_simd.h"
#include "engine/quant/k_scales_avx512.h"
#include "engine/quant/k_tiles.h"
#include "engine/quant/legacy_simd.h"
#include "engine/quant/panel_avx512.h"
#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant::avx512 {

namespace {

constexpr int kPanelRows = 16;
// Up to this many activation rows, DirectTile instead of the panel.
constexpr int kDirectMaxRows = 4;
// How far ahead DirectTile prefetches interleaved weights, in spans.
constexpr int kPrefetchSpans = 2;

// Unpacks blocks [first_block, K / kElems) of `rows` (<= 16) rows of w into
// the panel, one block at a time (scatter stores); missing rows get zero
// scales and offsets (their lanes are computed but never stored). The
// columns that whole 256-spans leave over (PackSpans does those).
template <class D>
void Pack(const uint8_t* w, int64_t row_bytes, int rows, int64_t K,
          int64_t first_block, Panel p) {
  const __m256i lanes = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
  const int64_t blocks = K / D::kElems;
  const int64_t first = first_block * D::kElems;
  for (int r = 0; r < kPanelRows; ++r) {
    if (r >= rows) {
      for (int64_t h = first / 16; h < K / 16; ++h) {
        p.scale[h * 16 + r] = 0.0f;
        p.offset[h * 16 + r] = 0.0f;
      }
      for (int64_t g = first / 4; g < K / 4; ++g) p.codes[g * 16 + r] = 0;
      continue;
    }
    const uint8_t* row = w + r * row_bytes;
    for (int64_t b = first_block; b < blocks; ++b) {
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

// ---- Fast unpacking: 16 rows x 256 values at a time, in registers ----

// Scales and offsets of one 256-value span of a row, per 16 values.
// Legacy types: the span is 8 blocks; their fp16 d (and m) are loaded
// together, each duplicated for the block's two 16-runs.
template <int kBytes>
inline __m256i GatherHeads(const uint8_t* p) {
  // Eight scalar loads: cheaper than vpgatherdd on the CPUs measured.
  return _mm256_setr_epi32(static_cast<int>(LoadU32(p)),
                           static_cast<int>(LoadU32(p + kBytes)),
                           static_cast<int>(LoadU32(p + 2 * kBytes)),
                           static_cast<int>(LoadU32(p + 3 * kBytes)),
                           static_cast<int>(LoadU32(p + 4 * kBytes)),
                           static_cast<int>(LoadU32(p + 5 * kBytes)),
                           static_cast<int>(LoadU32(p + 6 * kBytes)),
                           static_cast<int>(LoadU32(p + 7 * kBytes)));
}

// 8 values -> 16 lanes, each twice.
inline __m512 Twice(__m256 v) {
  return _mm512_permutexvar_ps(
      _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7),
      _mm512_castps256_ps512(v));
}

// d from the low halves of 8 gathered dwords; m from the high halves.
inline __m256 LowHalves(__m256i heads) {
  return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(heads));
}
inline __m256 HighHalves(__m256i heads) {
  return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(heads, 16)));
}

template <class D>
struct SpanScales;

template <class D, int kZero>
struct SymmetricLegacy {
  static void Get(const uint8_t* p, __m512* sc, __m512* off) {
    const __m512 d = Twice(LowHalves(GatherHeads<D::kBytes>(p)));
    *sc = d;
    *off = _mm512_mul_ps(d, _mm512_set1_ps(-static_cast<float>(kZero)));
  }
};
template <class D>
struct AffineLegacy {
  static void Get(const uint8_t* p, __m512* sc, __m512* off) {
    const __m256i heads = GatherHeads<D::kBytes>(p);
    *sc = Twice(LowHalves(heads));
    *off = Twice(HighHalves(heads));
  }
};
template <>
struct SpanScales<DecodeQ4_0> : SymmetricLegacy<DecodeQ4_0, 8> {};
template <>
struct SpanScales<DecodeQ5_0> : SymmetricLegacy<DecodeQ5_0, 16> {};
template <>
struct SpanScales<DecodeQ8_0> : SymmetricLegacy<DecodeQ8_0, 128> {};
template <>
struct SpanScales<DecodeIQ4_NL> : SymmetricLegacy<DecodeIQ4_NL, 128> {};
template <>
struct SpanScales<DecodeQ4_1> : AffineLegacy<DecodeQ4_1> {};
template <>
struct SpanScales<DecodeQ5_1> : AffineLegacy<DecodeQ5_1> {};

// 16 bytes -> 16 float lanes.
inline __m512 U8ToFloat(__m128i v) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v));
}
inline __m512 I8ToFloat(__m128i v) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v));
}
// Bytes 0..7 of v, each twice.
inline __m128i TwiceBytes(__m128i v) {
  return _mm_shuffle_epi8(
      v, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
}

template <class D>
struct ScalesQ45Span {
  static void Get(const uint8_t* b, __m512* sc, __m512* off) {
    const uint32_t w0 = LoadU32(b + 4), w1 = LoadU32(b + 8),
                   w2 = LoadU32(b + 12);
    const uint32_t s_hi = (w2 & 0x0F0F0F0F) | (((w0 >> 6) & 0x03030303) << 4);
    const uint32_t m_hi =
        ((w2 >> 4) & 0x0F0F0F0F) | (((w1 >> 6) & 0x03030303) << 4);
    const __m128i scales = _mm_setr_epi32(static_cast<int>(w0 & 0x3F3F3F3F),
                                          static_cast<int>(s_hi), 0, 0);
    const __m128i mins = _mm_setr_epi32(static_cast<int>(w1 & 0x3F3F3F3F),
                                        static_cast<int>(m_hi), 0, 0);
    *sc = _mm512_mul_ps(U8ToFloat(TwiceBytes(scales)), _mm512_set1_ps(Fp16(b)));
    *off = _mm512_mul_ps(U8ToFloat(TwiceBytes(mins)),
                         _mm512_set1_ps(-Fp16(b + 2)));
  }
};
template <>
struct SpanScales<DecodeQ4_K> : ScalesQ45Span<DecodeQ4_K> {};
template <>
struct SpanScales<DecodeQ5_K> : ScalesQ45Span<DecodeQ5_K> {};

template <>
struct SpanScales<DecodeQ6_K> {
  static void Get(const uint8_t* b, __m512* sc, __m512* off) {
    *sc = _mm512_mul_ps(
        I8ToFloat(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192))),
        _mm512_set1_ps(Fp16(b + 208)));
    *off = _mm512_mul_ps(*sc, _mm512_set1_ps(-32.0f));
  }
};

template <>
struct SpanScales<DecodeQ3_K> {
  static void Get(const uint8_t* b, __m512* sc, __m512* off) {
    const uint32_t w0 = LoadU32(b + 96), w1 = LoadU32(b + 100),
                   w2 = LoadU32(b + 104);
    const uint32_t lo = 0x0F0F0F0F, hi = 0x03030303;
    const __m128i s = _mm_setr_epi32(
        static_cast<int>((w0 & lo) | ((w2 & hi) << 4)),
        static_cast<int>((w1 & lo) | (((w2 >> 2) & hi) << 4)),
        static_cast<int>(((w0 >> 4) & lo) | (((w2 >> 4) & hi) << 4)),
        static_cast<int>(((w1 >> 4) & lo) | (((w2 >> 6) & hi) << 4)));
    *sc = _mm512_mul_ps(_mm512_sub_ps(U8ToFloat(s), _mm512_set1_ps(32.0f)),
                        _mm512_set1_ps(Fp16(b + 108)));
    *off = _mm512_mul_ps(*sc, _mm512_set1_ps(-4.0f));
  }
};

template <>
struct SpanScales<DecodeQ2_K> {
  static void Get(const uint8_t* b, __m512* sc, __m512* off) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
    const __m128i low = _mm_and_si128(s, _mm_set1_epi8(0x0F));
    const __m128i high =
        _mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0F));
    *sc = _mm512_mul_ps(U8ToFloat(low), _mm512_set1_ps(Fp16(b + 80)));
    *off = _mm512_mul_ps(U8ToFloat(high), _mm512_set1_ps(-Fp16(b + 82)));
  }
};

template <>
struct SpanScales<DecodeIQ4_XS> {
  static void Get(const uint8_t* b, __m512* sc, __m512* off) {
    const uint32_t scales_h = LoadU16(b + 2);
    const uint32_t scales_l = LoadU32(b + 4);
    uint64_t ls = 0;
    for (int ib = 0; ib < 8; ++ib) {
      const uint64_t v =
          ((scales_l >> (4 * ib)) & 0x0F) | (((scales_h >> (2 * ib)) & 3) << 4);
      ls |= v << (8 * ib);
    }
    const __m128i bytes = _mm_cvtsi64_si128(static_cast<long long>(ls));
    *sc = _mm512_mul_ps(
        _mm512_sub_ps(U8ToFloat(TwiceBytes(bytes)), _mm512_set1_ps(32.0f)),
        _mm512_set1_ps(Fp16(b)));
    *off = _mm512_mul_ps(*sc, _mm512_set1_ps(-128.0f));
  }
};

// 16 x 16 transpose of 32-bit lanes: afterwards r[c] lane i = old r[i] lane c.
inline void Transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
      t[8 * i + j + 4] =
          _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
    }
  }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
  }
}

// Scales and offsets of one 256-value span of 16 rows (`rows` real ones) at
// `span` (row r at span + r * row_stride), transposed: sc[h] lane r = row r's
// scale of values 16h... Generic: SpanScales per row, then a transpose. Missing
// rows are zero.
template <class D>
struct RowScales {
  static void Get(const uint8_t* span, int64_t row_stride, int rows,
                  __m512i sc[16], __m512i off[16]) {
    for (int r = 0; r < 16; ++r) {
      __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
      if (r < rows) SpanScales<D>::Get(span + r * row_stride, &a, &b);
      sc[r] = _mm512_castps_si512(a);
      off[r] = _mm512_castps_si512(b);
    }
    Transpose16(sc);
    Transpose16(off);
  }
};

// Dword at byte `offset` of each of 16 rows (missing rows 0).
inline __m512i GatherRows(const uint8_t* span, int64_t row_stride, int rows,
                          int offset) {
  const __m512i index = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(static_cast<int>(row_stride)));
  return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(),
                                     static_cast<__mmask16>((1u << rows) - 1),
                                     index, span + offset, 1);
}

inline __m512 HalfToFloat(__m512i dwords_low_halves) {
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dwords_low_halves));
}

// Q4_K/Q5_K straight into row lanes: the same products as ScalesQ45Span
// (six-bit value as float times d, or times -dmin).
template <class D>
struct RowScalesQ45 {
  static void Get(const uint8_t* span, int64_t row_stride, int rows,
                  __m512i sc[16], __m512i off[16]) {
    const Q45Heads heads{GatherRows(span, row_stride, rows, 0),
                         GatherRows(span, row_stride, rows, 4),
                         GatherRows(span, row_stride, rows, 8),
                         GatherRows(span, row_stride, rows, 12)};
    for (int j = 0; j < 8; ++j) {
      __m512 scale, offset;
      Q45RunScales(heads, j, &scale, &offset);
      sc[2 * j] = sc[2 * j + 1] = _mm512_castps_si512(scale);
      off[2 * j] = off[2 * j + 1] = _mm512_castps_si512(offset);
    }
  }
};
template <>
struct RowScales<DecodeQ4_K> : RowScalesQ45<DecodeQ4_K> {};
template <>
struct RowScales<DecodeQ5_K> : RowScalesQ45<DecodeQ5_K> {};

// Q6_K: the same products as SpanScales<DecodeQ6_K>.
template <>
struct RowScales<DecodeQ6_K> {
  static void Get(const uint8_t* span, int64_t row_stride, int rows,
                  __m512i sc[16], __m512i off[16]) {
    // d is the high half of the dword at 206 (a dword at 208 would read
    // past the block).
    const __m512 d = HalfToFloat(
        _mm512_srli_epi32(GatherRows(span, row_stride, rows, 206), 16));
    for (int q = 0; q < 4; ++q) {
      const __m512i g = GatherRows(span, row_stride, rows, 192 + 4 * q);
      for (int k = 0; k < 4; ++k) {
        const __m512i v = _mm512_srai_epi32(_mm512_slli_epi32(g, 24 - 8 * k),
                                            24);  // signed byte k
        const __m512 scale = _mm512_mul_ps(_mm512_cvtepi32_ps(v), d);
        sc[4 * q + k] = _mm512_castps_si512(scale);
        off[4 * q + k] =
            _mm512_castps_si512(_mm512_mul_ps(scale, _mm512_set1_ps(-32.0f)));
      }
    }
  }
};

// Where a tile's (<= 16 rows') 256-value spans lie: row r's span s starts at
// tile + s * span_stride + r * row_stride. In the rows' natural order a span
// follows its row; interleaved (InterleaveRows), the tile's rows' s-th spans
// are back to back, so that a thread reads its tiles as one sequential
// stream (16 row streams per thread defeat the hardware prefetchers: the
// direct kernel read weights from DRAM at 13-18 GB/s of 59).
struct TileLayout {
  int64_t row_stride, span_stride;
};
template <class D>
TileLayout LayoutOf(int64_t K, int rows, bool interleaved) {
  constexpr int64_t kSpanBytes = 256 / D::kElems * D::kBytes;
  if (interleaved) return {kSpanBytes, rows * kSpanBytes};
  return {K / D::kElems * D::kBytes, kSpanBytes};
}

// Interleaved, a thread's weights are one stream: ask for the bytes
// kPrefetchSpans spans past `spans` (a tile's s-th spans), which run on
// into the thread's next tile. The hardware prefetchers alone left most of
// the bandwidth unused. Into L2, as k_tiles_avx512.cc does (Q8_0 decode,
// on this kernel before Q8_0 rows became tiles, went from 190-202 to
// 220-227 tokens/s).
inline void PrefetchAhead(const uint8_t* spans, TileLayout layout) {
  if (layout.row_stride >= layout.span_stride) return;  // rows' own order
  const uint8_t* ahead = spans + kPrefetchSpans * layout.span_stride;
  for (int64_t b = 0; b < layout.span_stride; b += 64)
    _mm_prefetch(reinterpret_cast<const char*>(ahead + b), _MM_HINT_T1);
}

// Codes of unit u (64 values) of the 256-value span at p.
template <class D>
inline __m512i SpanCodes(const uint8_t* p, int u) {
  __m256i lo, hi;
  if constexpr (D::kElems == 32) {
    lo = D::Codes(p + 2 * u * D::kBytes, 0);
    hi = D::Codes(p + (2 * u + 1) * D::kBytes, 0);
  } else {
    lo = D::Codes(p, 2 * u);
    hi = D::Codes(p, 2 * u + 1);
  }
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// The types whose codes are value + (128 >> kZeroShiftOf) in every 32-value
// run (Q8_0, IQ4_NL and IQ4_XS 128, Q5_0 16, Q4_0 8): their zero point is
// subtracted in integers (panel_avx512.h's ZeroTerm). -1: the types with
// fp32 offsets (mins, or runs of 16).
template <class D>
constexpr int kZeroShiftOf = -1;
template <>
constexpr int kZeroShiftOf<DecodeQ8_0> = 0;
template <>
constexpr int kZeroShiftOf<DecodeIQ4_NL> = 0;
template <>
constexpr int kZeroShiftOf<DecodeIQ4_XS> = 0;
template <>
constexpr int kZeroShiftOf<DecodeQ5_0> = 3;
template <>
constexpr int kZeroShiftOf<DecodeQ4_0> = 4;

// Unpacks the first `spans` 256-value spans of 16 rows (`rows` real ones)
// into the panel, transposing in registers.
template <class D>
void PackSpans(const uint8_t* w, TileLayout layout, int rows, int64_t spans,
               Panel p) {
  for (int64_t s = 0; s < spans; ++s) {
    const uint8_t* span = w + s * layout.span_stride;
    PrefetchAhead(span, layout);
    __m512i sc[16], off[16];
    RowScales<D>::Get(span, layout.row_stride, rows, sc, off);
    for (int h = 0; h < 16; ++h) {
      _mm512_store_si512(p.scale + (16 * s + h) * 16, sc[h]);
      // (Unread where the zero point is applied in integers.)
      if constexpr (kZeroShiftOf<D> < 0)
        _mm512_store_si512(p.offset + (16 * s + h) * 16, off[h]);
    }
    for (int u = 0; u < 4; ++u) {
      __m512i v[16];
      for (int r = 0; r < 16; ++r) {
        v[r] = r < rows ? SpanCodes<D>(span + r * layout.row_stride, u)
                        : _mm512_setzero_si512();
      }
      Transpose16(v);
      for (int g = 0; g < 16; ++g)
        _mm512_store_si512(p.codes + (64 * s + 16 * u + g) * 16, v[g]);
    }
  }
}

// Values per scale of a type: its scales and offsets change every 32
// values (legacy blocks, Q4_K, Q5_K, IQ4_XS) or every 16 (Q2_K, Q3_K, Q6_K).
// The panel stores them per 16 either way; the fp32 epilogue runs once per
// run, so a 32-run type pays it half as often.
template <class D>
struct ScaleRun {
  static constexpr int k = D::kElems == 32 ? 32 : 16;
};
template <>
struct ScaleRun<DecodeQ4_K> {
  static constexpr int k = 32;
};
template <>
struct ScaleRun<DecodeQ5_K> {
  static constexpr int k = 32;
};
template <>
struct ScaleRun<DecodeIQ4_XS> {
  static constexpr int k = 32;
};

// ---- Direct kernel for a few activation rows (decode) ----
//
// At small M, unpacking the panel costs several times the products it
// serves. The direct kernel reads each row's codes in their natural order
// and multiplies them with the activations (not broadcast): vpdpbusd gives
// 4-value partial sums, which are added into 16-value sums and transposed so
// that lane r holds row r, as in the panel. The integer sums are exact and
// the fp32 operations per row (order and operands) are those of PanelTile,
// so a row's result is bit-identical to the panel kernel's.

// Partial sums p[u] (lane 4g + i: values 64u + 16g + 4i ..) -> one vector
// whose lane 4g + u is the sum over group 4u + g.
inline __m512i Reduce4(const __m512i p[4]) {
  const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]),
                                      _mm512_unpackhi_epi32(p[0], p[1]));
  const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]),
                                      _mm512_unpackhi_epi32(p[2], p[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd),
                          _mm512_unpackhi_epi64(ab, cd));
}

// T activation rows (T <= kDirectMaxRows) against `rows` (<= 16) weight rows
// at w; K a multiple of 256.
template <class D, int T>
void DirectTile(const QuantizedActs& x, int64_t K, const uint8_t* w,
                TileLayout layout, int rows, float* y, int64_t ldy,
                __mmask16 valid) {
  constexpr int kRun = ScaleRun<D>::k;
  constexpr int kZeroShift = kZeroShiftOf<D>;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < K / 256; ++s) {
    const uint8_t* spans = w + s * layout.span_stride;
    PrefetchAhead(spans, layout);
    __m512i sc[16], off[16];
    RowScales<D>::Get(spans, layout.row_stride, rows, sc, off);
    __m512i xa[T][4];
    for (int t = 0; t < T; ++t) {
      for (int u = 0; u < 4; ++u) {
        xa[t][u] = _mm512_loadu_si512(x.q + t * K + 256 * s + 64 * u);
      }
    }
    __m512i isum[T][16];
    for (int r = 0; r < 16; ++r) {
      if (r >= rows) {
        for (int t = 0; t < T; ++t) isum[t][r] = _mm512_setzero_si512();
        continue;
      }
      const uint8_t* span = spans + r * layout.row_stride;
      __m512i codes[4];
      for (int u = 0; u < 4; ++u) codes[u] = SpanCodes<D>(span, u);
      for (int t = 0; t < T; ++t) {
        __m512i p[4];
        for (int u = 0; u < 4; ++u) {
          p[u] =
              _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[u], xa[t][u]);
        }
        isum[t][r] = Reduce4(p);
      }
    }
    for (int t = 0; t < T; ++t) {
      Transpose16(isum[t]);  // now isum[t][4g + u] lane r: group 4u + g
      const float* d4 = x.d4 + t * (K / 4) + 64 * s;
      const float* sums = ActSums<kRun>(x, t, K) + 256 / kRun * s;
      for (int h = 0; h < 16; h += kRun / 16) {
        __m512i run = isum[t][4 * (h % 4) + h / 4];
        if constexpr (kRun == 32) {
          run = _mm512_add_epi32(run, isum[t][4 * ((h + 1) % 4) + h / 4]);
        }
        if constexpr (kZeroShift >= 0) {
          run = _mm512_add_epi32(
              run,
              ZeroTerm<kZeroShift>(x.zsum32 + t * (K / 32) + 8 * s + h / 2));
        }
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(run),
                                 _mm512_mul_ps(_mm512_castsi512_ps(sc[h]),
                                               _mm512_set1_ps(d4[4 * h])),
                                 acc[t]);
        if constexpr (kZeroShift < 0) {
          acc[t] =
              _mm512_fmadd_ps(_mm512_castsi512_ps(off[h]),
                              _mm512_set1_ps(sums[h / (kRun / 16)]), acc[t]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * ldy, valid, acc[t]);
}

template <class D, int T>
void Direct(const QuantizedActs& x, int64_t K, const uint8_t* w, int64_t N,
            float* y, int64_t ldy, bool interleaved) {
  const int64_t row_bytes = K / D::kElems * D::kBytes;
  const int64_t tiles = (N + kPanelRows - 1) / kPanelRows;
#pragma omp parallel for schedule(static)
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t n0 = tile * kPanelRows;
    const int rows =
        static_cast<int>(N - n0 < kPanelRows ? N - n0 : kPanelRows);
    DirectTile<D, T>(x, K, w + n0 * row_bytes,
                     LayoutOf<D>(K, rows, interleaved), rows, y + n0, ldy,
                     static_cast<__mmask16>((1u << rows) - 1));
  }
}

template <class D>
void Gemm(const QuantizedActs& x, int64_t M, int64_t K, const uint8_t* w,
          int64_t N, float* y, int64_t ldy, uint8_t* panels, int slots,
          bool direct_ok, bool interleaved) {
  if (direct_ok && K % 256 == 0 && M <= kDirectMaxRows) {
    switch (M) {
      case 1:
        return Direct<D, 1>(x, K, w, N, y, ldy, interleaved);
      case 2:
        return Direct<D, 2>(x, K, w, N, y, ldy, interleaved);
      case 3:
        return Direct<D, 3>(x, K, w, N, y, ldy, interleaved);
      case 4:
        return Direct<D, 4>(x, K, w, N, y, ldy, interleaved);
    }
  }
  const int64_t row_bytes = K / D::kElems * D::kBytes;
  const int64_t panel_bytes = PackedPanelBytes(K);
  const int64_t tiles = (N + kPanelRows - 1) / kPanelRows;
  const int threads =
      omp_get_max_threads() < slots ? omp_get_max_threads() : slots;
#pragma omp parallel num_threads(threads)
  {
    const Panel p = PanelAt(panels + omp_get_thread_num() * panel_bytes, K);
    for (int64_t m0 = 0; m0 < M; m0 += kPanelPassRows) {
      const int64_t rows_m = M - m0 < kPanelPassRows ? M - m0 : kPanelPassRows;
      const QuantizedActs xm = ActsFrom(x, m0, K);
      // As in TiledGemm: static tiles, own rows of y, so no barrier.
#pragma omp for schedule(static) nowait
      for (int64_t tile = 0; tile < tiles; ++tile) {
        const int64_t n0 = tile * kPanelRows;
        const int rows =
            static_cast<int>(N - n0 < kPanelRows ? N - n0 : kPanelRows);
        const int64_t spans = K / 256;
        PackSpans<D>(w + n0 * row_bytes, LayoutOf<D>(K, rows, interleaved),
                     rows, spans, p);
        if (spans * 256 < K) {  // never interleaved (InterleaveRows)
          Pack<D>(w + n0 * row_bytes, row_bytes, rows, K,
                  spans * 256 / D::kElems, p);
        }
        PanelRows<ScaleRun<D>::k, kZeroShiftOf<D>>(
            xm, rows_m, K, p, y + m0 * ldy + n0, ldy,
            static_cast<__mmask16>((1u << rows) - 1));
      }
    }
  }
}

void Dispatch(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
              const uint8_t* w, int64_t N, float* y, int64_t ldy,
              uint8_t* panels, int slots, bool direct_ok, bool interleaved) {
  // Interleaved Q4_K, Q6_K and Q8_0 rows are tiles (k_tiles.h), read by
  // their own kernel (Q4_K and Q6_K on the span activations:
  // ReadsSpanActivations).
  if (interleaved && TiledType(type)) {
    return TiledGemm(type, x, M, K, w, N, y, ldy, panels, slots, direct_ok);
  }
  switch (type) {
    case kIdQ4_0:
      return Gemm<DecodeQ4_0>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdQ4_1:
      return Gemm<DecodeQ4_1>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdQ5_0:
      return Gemm<DecodeQ5_0>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdQ5_1:
      return Gemm<DecodeQ5_1>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdQ8_0:
      return Gemm<DecodeQ8_0>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdQ2_K:
      return Gemm<DecodeQ2_K>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdQ3_K:
      return Gemm<DecodeQ3_K>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdQ4_K:
      return Gemm<DecodeQ4_K>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdQ5_K:
      return Gemm<DecodeQ5_K>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdQ6_K:
      return Gemm<DecodeQ6_K>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                              interleaved);
    case kIdIQ4_NL:
      return Gemm<DecodeIQ4_NL>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                                interleaved);
    case kIdIQ4_XS:
      return Gemm<DecodeIQ4_XS>(x, M, K, w, N, y, ldy, panels, slots, direct_ok,
                                interleaved);
  }
}

}  // namespace

void PackedGemm(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
                const uint8_t* w, int64_t N, float* y, int64_t ldy,
                uint8_t* panels, int slots, bool interleaved) {
  Dispatch(type, x, M, K, w, N, y, ldy, panels, slots, /*direct_ok=*/true,
           interleaved);
}

void PackedPanelGemm(uint32_t type, const QuantizedActs& x, int64_t M,
                     int64_t K, const uint8_t* w, int64_t N, float* y,
                     int64_t ldy, uint8_t* panels, int slots,
                     bool interleaved) {
  Dispatch(type, x, M, K, w, N, y, ldy, panels, slots, /*direct_ok=*/false,
           interleaved);
}

}  // namespace lumen::engine::quant::avx512
