// PagedAttention's register kernel with 16-lane registers (see
// paged_attention.cc for the AVX2 one and the shape of the passes). This
// file is compiled with AVX-512 enabled, so it includes no C++ library
// headers: an inline library function compiled here could be merged into
// code that runs on AVX2-only CPUs.

#include <immintrin.h>

#include "engine/kernels/attention_item.h"

namespace lumen::engine::kernels::avx512 {

namespace {

inline int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t Max(int64_t a, int64_t b) { return a > b ? a : b; }

// Block b's rows of a KV head (b indexes the sequence's block table).
inline const uint8_t* KeyRows(const AttentionItem& it, int64_t b,
                              int64_t kv_head) {
  return it.keys + it.block_table[b] * it.block_stride +
         kv_head * it.block_size * it.row_bytes;
}
inline const uint8_t* ValueRows(const AttentionItem& it, int64_t b,
                                int64_t kv_head) {
  return it.values + it.block_table[b] * it.block_stride +
         kv_head * it.block_size * it.row_bytes;
}

// A block's rows of the item's KV heads. Blocks are scattered, so the
// hardware prefetcher restarts at every one: the kernels ask for rows ahead
// (a block is processed faster than DRAM answers), values during the key
// pass, for the value pass (below, per kernel). Into L2: into L1, 16
// sequences at context 512 ran a fifth slower in `lumen bench engine`
// (Zen 5; presumably L1's fill buffers then bound the misses in flight).
constexpr int64_t kPrefetchBlocks = 4;
inline void PrefetchRows(const uint8_t* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64)
    _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T1);
}

// The tile kernel (AttendTileOf), while block `block` is processed: the keys
// kPrefetchBlocks ahead (the first block asks for all of the next
// kPrefetchBlocks) and the block's values, for the value pass. range_bytes:
// the item's KV heads' rows.
inline void PrefetchAround(const AttentionItem& it, int64_t block,
                           int64_t first_block, int64_t last_block,
                           int64_t kvh0, int64_t range_bytes) {
  for (int64_t b = block == first_block ? block + 1 : block + kPrefetchBlocks;
       b <= block + kPrefetchBlocks && b <= last_block; ++b) {
    PrefetchRows(KeyRows(it, b, kvh0), range_bytes);
  }
  PrefetchRows(ValueRows(it, block, kvh0), range_bytes);
}

// The one-token kernel (Attend) instead asks for keys and values both
// kAheadBlocks ahead, block `block + kAheadBlocks`'s rows a heads-th at a
// time: head i's share while head i scores its keys, a quarter of it before
// each group of 4 keys (of a block of 16; the rest after the last group).
// The misses then stay in flight evenly through the pass rather than in
// bursts. 16 sequences of the 110M Q8_0 file, `lumen bench engine` decode
// step on a noisy VM, two sets of 3 alternated runs, one share per head
// issued at once (against one burst per block): at
// context 512 21.3-21.8 -> 20.3-20.6 ms, then 21.2-22.1 -> 21.3-21.5 ms
// (f16 cache) and 29.3-29.8 -> 28.2-28.3 ms (f32 cache). Each share in
// quarters, `gemm_bench --attention_only --threads 2`, 4 alternated runs,
// ms per step of 16 sequences: f16 context 128 1.99-2.84 -> 1.66-2.22, 512
// 11.1-12.1 -> 8.5-10.5, 2048 45-53 -> 38-45; q8_0 cache 2048 40-43 ->
// 28-34; f32 within noise. `lumen bench engine` decode 16 on the 110M f32
// file (f16 cache), alternated: 791-850 -> 911-914 tokens/s at context 128
// and 545-589 -> 644 at 512 in 2 runs, 741-893 -> 863-953 and 522-606 ->
// 577-671 in 3 more.
constexpr int64_t kAheadBlocks = 2;
// Before the first block: everything of the first kAheadBlocks.
inline void PrefetchFirstBlocks(const AttentionItem& it, int64_t first_block,
                                int64_t last_block, int64_t kvh0,
                                int64_t range_bytes) {
  for (int64_t b = first_block;
       b < first_block + kAheadBlocks && b <= last_block; ++b) {
    PrefetchRows(KeyRows(it, b, kvh0), range_bytes);
    PrefetchRows(ValueRows(it, b, kvh0), range_bytes);
  }
}
// The bytes of one head's share: range_bytes / heads rounded up to whole
// lines, so that the shares cover the range.
inline int64_t PrefetchShareBytes(int64_t range_bytes, int64_t heads) {
  return ((range_bytes + heads - 1) / heads + 63) / 64 * 64;
}
// Key and value rows to ask for while one head scores a block (none:
// bytes 0).
struct PrefetchShare {
  const uint8_t* keys = nullptr;
  const uint8_t* values = nullptr;
  int64_t bytes = 0;
};
// Share i of the rows kAheadBlocks ahead of `block`.
inline PrefetchShare ShareAhead(const AttentionItem& it, int64_t block,
                                int64_t last_block, int64_t kvh0,
                                int64_t range_bytes, int64_t i, int64_t share) {
  PrefetchShare pf;
  const int64_t offset = i * share;
  if (block + kAheadBlocks > last_block || offset >= range_bytes) return pf;
  pf.keys = KeyRows(it, block + kAheadBlocks, kvh0) + offset;
  pf.values = ValueRows(it, block + kAheadBlocks, kvh0) + offset;
  pf.bytes = Min(share, range_bytes - offset);
  return pf;
}
// Asks for the next `step` bytes of a share (from *done on), or all the
// rest when step is 0.
inline void PrefetchSharePart(const PrefetchShare& pf, int64_t step,
                              int64_t* done) {
  if (*done >= pf.bytes) return;
  const int64_t n = step > 0 ? Min(step, pf.bytes - *done) : pf.bytes - *done;
  PrefetchRows(pf.keys + *done, n);
  PrefetchRows(pf.values + *done, n);
  *done += n;
}

// A cached row of 16 * W values (kv_cache.h), 16 at a time as fp32.
template <int W>
struct F32Rows {
  static constexpr int64_t kRowBytes = 64 * W;
  static __m512 Load16(const uint8_t* row, int w) {
    return _mm512_loadu_ps(row + 64 * w);
  }
};
template <int W>
struct F16Rows {
  static constexpr int64_t kRowBytes = 32 * W;
  static __m512 Load16(const uint8_t* row, int w) {
    return _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * w)));
  }
};
// int8 codes, then an fp16 scale per block of kBlock values; the compiler
// loads each block's scale once in the unrolled loops.
template <int W>
struct Q8Rows {
  static constexpr int kBlock = W >= 2 ? 32 : 16;
  static constexpr int64_t kRowBytes = 16 * W + 2 * (16 * W / kBlock);
  static __m512 Load16(const uint8_t* row, int w) {
    const __m512 codes = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * w))));
    uint16_t bits;
    __builtin_memcpy(&bits, row + 16 * W + 2 * (16 * w / kBlock), 2);
    const __m128i h = _mm_cvtsi32_si128(bits);
    return _mm512_mul_ps(codes, _mm512_broadcastss_ps(_mm_cvtph_ps(h)));
  }
};

// exp(x) for 16 floats: Exp256's range reduction and polynomial (vec_exp.h,
// within 2 ulp of std::exp for x in [-87, 88]), with the power of two
// applied by vscalefps. Per lane it gives Exp256's bits for x < 88 (a
// softmax has x <= 0).
inline __m512 Exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)),
                    _mm512_set1_ps(-87.3365478515625f));
  const __m512 n = _mm512_roundscale_ps(
      _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
  p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// scores[p] = exp(scores[p] - max) for p < len; returns their sum. The
// AVX-512 kernels' softmax (ExpMinusMaxInPlace's AVX2 loop spent a fifth of
// the prefill tile kernel's time in gemm_bench). Both kernels here call it,
// so a token's bits do not depend on which of them ran.
inline float Exp16MinusMaxInPlace(float* scores, int64_t len, float max) {
  const __m512 m = _mm512_set1_ps(max);
  __m512 acc = _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 16 <= len; p += 16) {
    const __m512 e = Exp512(_mm512_sub_ps(_mm512_loadu_ps(scores + p), m));
    _mm512_storeu_ps(scores + p, e);
    acc = _mm512_add_ps(acc, e);
  }
  if (p < len) {
    const __mmask16 k = static_cast<__mmask16>((1u << (len - p)) - 1);
    const __m512 e =
        Exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, scores + p), m));
    _mm512_mask_storeu_ps(scores + p, k, e);
    acc = _mm512_mask_add_ps(acc, k, acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}

// The sums of four vectors' lanes, in order.
inline __m128 Sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  auto half = [](__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v),
                         _mm512_extractf32x8_ps(v, 1));
  };
  const __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(half(a), half(b)),
                                  _mm256_hadd_ps(half(c), half(d)));
  return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

// Query head row qh's scores over slots [first_slot, slots) of one block's
// key rows k: sc[base + j] for slot j, folded into the head's running
// maximum (max4 over groups of four, max1 over the rest).
// pf: rows to ask for meanwhile, a quarter before each group of 4 keys and
// what is left after the last.
template <int W, template <int> class Rows>
inline void ScoreSlots(const float* qh, const uint8_t* k, int64_t first_slot,
                       int64_t slots, int64_t base, float scale, float* sc,
                       __m128* max4, float* max1,
                       const PrefetchShare& pf = PrefetchShare{}) {
  using R = Rows<W>;
  constexpr int64_t rb = R::kRowBytes;
  __m512 q[W];
  for (int w = 0; w < W; ++w) q[w] = _mm512_loadu_ps(qh + 16 * w);
  const int64_t pf_step = (pf.bytes / 4 + 63) / 64 * 64;
  int64_t pf_done = 0;
  int64_t j = first_slot;
  for (; j + 4 <= slots; j += 4) {
    PrefetchSharePart(pf, pf_step, &pf_done);
    __m512 acc[4];
    for (int s = 0; s < 4; ++s) {
      const uint8_t* row = k + (j + s) * rb;
      acc[s] = _mm512_mul_ps(q[0], R::Load16(row, 0));
      for (int w = 1; w < W; ++w)
        acc[s] = _mm512_fmadd_ps(q[w], R::Load16(row, w), acc[s]);
    }
    const __m128 four =
        _mm_mul_ps(Sum4(acc[0], acc[1], acc[2], acc[3]), _mm_set1_ps(scale));
    *max4 = _mm_max_ps(*max4, four);
    _mm_storeu_ps(sc + (base + j), four);
  }
  for (; j < slots; ++j) {
    const uint8_t* row = k + j * rb;
    __m512 acc = _mm512_mul_ps(q[0], R::Load16(row, 0));
    for (int w = 1; w < W; ++w)
      acc = _mm512_fmadd_ps(q[w], R::Load16(row, w), acc);
    sc[base + j] = _mm512_reduce_add_ps(acc) * scale;
    if (sc[base + j] > *max1) *max1 = sc[base + j];
  }
  PrefetchSharePart(pf, 0, &pf_done);
}

// out += sum over slots [first_slot, slots) of p[j] times value row j.
template <int W, template <int> class Rows>
inline void AccumulateValues(const uint8_t* vals, int64_t first_slot,
                             int64_t slots, const float* p, float* out) {
  using R = Rows<W>;
  __m512 o[W];
  for (int w = 0; w < W; ++w) o[w] = _mm512_loadu_ps(out + 16 * w);
  for (int64_t j = first_slot; j < slots; ++j) {
    const __m512 pj = _mm512_set1_ps(p[j]);
    const uint8_t* row = vals + j * R::kRowBytes;
    for (int w = 0; w < W; ++w)
      o[w] = _mm512_fmadd_ps(pj, R::Load16(row, w), o[w]);
  }
  for (int w = 0; w < W; ++w) _mm512_storeu_ps(out + 16 * w, o[w]);
}

inline float MaxOf(__m128 max4, float max1) {
  __m128 m = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float m4 = _mm_cvtss_f32(m);
  return m4 > max1 ? m4 : max1;
}

inline void ScaleOut(float* out, int w_count, float inv_sum) {
  const __m512 inv = _mm512_set1_ps(inv_sum);
  for (int w = 0; w < w_count; ++w)
    _mm512_storeu_ps(out + 16 * w,
                     _mm512_mul_ps(_mm512_loadu_ps(out + 16 * w), inv));
}

template <int W, template <int> class Rows>
void Attend(const AttentionItem& it, float* scores, int64_t max_context) {
  using R = Rows<W>;
  constexpr int64_t rb = R::kRowBytes;
  const int64_t bs = it.block_size;
  const int64_t heads = it.h1 - it.h0;
  const int64_t kvh0 = it.h0 / it.group;
  const int64_t range_bytes = ((it.h1 - 1) / it.group + 1 - kvh0) * bs * rb;
  const int64_t first_block = it.first / bs, last_block = (it.len - 1) / bs;
  __m128 max4[kMaxHeadsPerItem];
  float max1[kMaxHeadsPerItem];
  for (int64_t i = 0; i < heads; ++i) {
    max4[i] = _mm_set1_ps(-__builtin_inff());
    max1[i] = -__builtin_inff();
  }
  PrefetchFirstBlocks(it, first_block, last_block, kvh0, range_bytes);
  const int64_t share = PrefetchShareBytes(range_bytes, heads);
  for (int64_t block = first_block; block <= last_block; ++block) {
    const int64_t start = block * bs;
    const int64_t slots = Min(bs, it.len - start);
    const int64_t first_slot = Max(it.first - start, 0);
    const int64_t base = start - it.first;  // sc[base + j]: slot j
    for (int64_t i = 0; i < heads; ++i) {
      const int64_t h = it.h0 + i;
      ScoreSlots<W, Rows>(
          it.q + h * 16 * W, KeyRows(it, block, h / it.group), first_slot,
          slots, base, it.scale, scores + i * max_context, &max4[i], &max1[i],
          ShareAhead(it, block, last_block, kvh0, range_bytes, i, share));
    }
  }
  float inv_sum[kMaxHeadsPerItem];
  for (int64_t i = 0; i < heads; ++i) {
    inv_sum[i] =
        1.0f / Exp16MinusMaxInPlace(scores + i * max_context, it.len - it.first,
                                    MaxOf(max4[i], max1[i]));
    float* out = it.out + (it.h0 + i) * 16 * W;
    for (int w = 0; w < W; ++w)
      _mm512_storeu_ps(out + 16 * w, _mm512_setzero_ps());
  }
  for (int64_t block = first_block; block <= last_block; ++block) {
    const int64_t start = block * bs;
    const int64_t slots = Min(bs, it.len - start);
    const int64_t first_slot = Max(it.first - start, 0);
    const int64_t base = start - it.first;
    for (int64_t i = 0; i < heads; ++i) {
      const int64_t h = it.h0 + i;
      AccumulateValues<W, Rows>(ValueRows(it, block, h / it.group), first_slot,
                                slots, scores + i * max_context + base,
                                it.out + h * 16 * W);
    }
  }
  for (int64_t i = 0; i < heads; ++i)
    ScaleOut(it.out + (it.h0 + i) * 16 * W, W, inv_sum[i]);
}

// In place: r[i]'s lane j becomes r[j]'s lane i.
inline void Transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // Per 128-bit lane L, r[4g + e] = rows 4g..4g+3 at column 4L + e.
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // Column 4L + e gathers lane L of r[e], r[4 + e], r[8 + e], r[12 + e].
  for (int e = 0; e < 4; ++e) {
    const __m512 u0 =
        _mm512_shuffle_f32x4(r[e], r[4 + e], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 u1 =
        _mm512_shuffle_f32x4(r[e], r[4 + e], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512 u2 =
        _mm512_shuffle_f32x4(r[8 + e], r[12 + e], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 u3 =
        _mm512_shuffle_f32x4(r[8 + e], r[12 + e], _MM_SHUFFLE(3, 2, 3, 2));
    t[e] = _mm512_shuffle_f32x4(u0, u2, _MM_SHUFFLE(2, 0, 2, 0));
    t[4 + e] = _mm512_shuffle_f32x4(u0, u2, _MM_SHUFFLE(3, 1, 3, 1));
    t[8 + e] = _mm512_shuffle_f32x4(u1, u3, _MM_SHUFFLE(2, 0, 2, 0));
    t[12 + e] = _mm512_shuffle_f32x4(u1, u3, _MM_SHUFFLE(3, 1, 3, 1));
  }
  for (int c = 0; c < 16; ++c) r[c] = t[c];
}

// The 16 scores of each of N query head rows qh[n] over a whole block whose
// keys are transposed in kt (kt[16 * d + j]: value d of key j), with the
// arithmetic ScoreSlots gives each key: lane l of key j's products chained
// over the W registers, then Sum4's tree over the 16 lanes
// ((h0 + h1) + (h2 + h3)) + ((h4 + h5) + (h6 + h7)) with h_i = lane i +
// lane i + 8, then the scale. The lanes go a quarter at a time (2c, 2c + 1,
// 2c + 8, 2c + 9: h_2c + h_2c+1) so that each key register loaded serves
// all N rows while 4N chains stay in registers.
template <int W, int N>
inline void ScoreTransposedBlocks(const float* const qh[N], const float* kt,
                                  float scale, __m512 out[N]) {
  __m512 half[N];  // (h0 + h1) + (h2 + h3), then the same of h4..h7
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const int lanes[4] = {2 * c, 2 * c + 1, 2 * c + 8, 2 * c + 9};
    __m512 p[N][4];
#pragma GCC unroll 4
    for (int e = 0; e < 4; ++e) {
      const __m512 k = _mm512_load_ps(kt + 16 * lanes[e]);
#pragma GCC unroll 4
      for (int n = 0; n < N; ++n)
        p[n][e] = _mm512_mul_ps(_mm512_set1_ps(qh[n][lanes[e]]), k);
    }
#pragma GCC unroll 8
    for (int w = 1; w < W; ++w) {
#pragma GCC unroll 4
      for (int e = 0; e < 4; ++e) {
        const __m512 k = _mm512_load_ps(kt + 16 * (16 * w + lanes[e]));
#pragma GCC unroll 4
        for (int n = 0; n < N; ++n) {
          p[n][e] = _mm512_fmadd_ps(_mm512_set1_ps(qh[n][16 * w + lanes[e]]), k,
                                    p[n][e]);
        }
      }
    }
#pragma GCC unroll 4
    for (int n = 0; n < N; ++n) {
      const __m512 pair = _mm512_add_ps(_mm512_add_ps(p[n][0], p[n][2]),
                                        _mm512_add_ps(p[n][1], p[n][3]));
      if (c % 2 == 0) {
        out[n] = pair;
      } else {
        out[n] = _mm512_add_ps(out[n], pair);
        if (c == 1) half[n] = out[n];
      }
    }
  }
#pragma GCC unroll 4
  for (int n = 0; n < N; ++n) {
    out[n] =
        _mm512_mul_ps(_mm512_add_ps(half[n], out[n]), _mm512_set1_ps(scale));
  }
}

// out[n] += sum over the 16 slots of p[n][j] times fp32 value row j of vb
// (16 * W values each): AccumulateValues' operations for each of N rows,
// each value register loaded once for all of them.
template <int W, int N>
inline void AccumulateBlockValues(const float* vb, const float* const p[N],
                                  float* const out[N]) {
  __m512 o[N][W];
#pragma GCC unroll 4
  for (int n = 0; n < N; ++n) {
#pragma GCC unroll 8
    for (int w = 0; w < W; ++w) o[n][w] = _mm512_loadu_ps(out[n] + 16 * w);
  }
  for (int j = 0; j < 16; ++j) {
#pragma GCC unroll 8
    for (int w = 0; w < W; ++w) {
      const __m512 v = _mm512_load_ps(vb + 16 * (W * j + w));
#pragma GCC unroll 4
      for (int n = 0; n < N; ++n)
        o[n][w] = _mm512_fmadd_ps(_mm512_set1_ps(p[n][j]), v, o[n][w]);
    }
  }
#pragma GCC unroll 4
  for (int n = 0; n < N; ++n) {
#pragma GCC unroll 8
    for (int w = 0; w < W; ++w) _mm512_storeu_ps(out[n] + 16 * w, o[n][w]);
  }
}

// Calls run.template operator()<N>(i) for i = 0, kMax, 2 kMax, ... over
// `count` items, N = kMax but for the rest (1 to kMax - 1, kMax <= 4).
template <int kMax, class Run>
inline void InGroupsOf(int64_t count, Run run) {
  int64_t i = 0;
  for (; i + kMax <= count; i += kMax) run.template operator()<kMax>(i);
  switch (count - i) {
    case 3:
      if constexpr (kMax > 3) run.template operator()<3>(i);
      break;
    case 2:
      if constexpr (kMax > 2) run.template operator()<2>(i);
      break;
    case 1:
      if constexpr (kMax > 1) run.template operator()<1>(i);
      break;
  }
}

template <int W, template <int> class Rows>
void AttendTileOf(const AttentionItem& it0, int64_t nq, int64_t q_stride,
                  int64_t out_stride, int64_t window, float* scores,
                  int64_t max_context) {
  using R = Rows<W>;
  constexpr int64_t rb = R::kRowBytes, hd = 16 * W, bs = 16;
  const int64_t heads = it0.h1 - it0.h0;
  const int64_t kvh0 = it0.h0 / it0.group, kvh1 = (it0.h1 - 1) / it0.group;
  const int64_t range_bytes = (kvh1 + 1 - kvh0) * bs * rb;
  int64_t first[kMaxTileQueries], len[kMaxTileQueries];
  for (int64_t i = 0; i < nq; ++i) {
    len[i] = it0.len + i;
    first[i] = window > 0 ? Max(0, len[i] - window) : 0;
  }
  auto sc_of = [&](int64_t i, int64_t hh) {
    return scores + (i * heads + hh) * max_context;
  };
  // The tokens whose window holds the whole block that starts at `start`
  // (whole; they use the transposed block and share its registers) and
  // those that see only part of it (their first or last block: key by key,
  // as alone).
  struct Tokens {
    int64_t whole[kMaxTileQueries], partial[kMaxTileQueries];
    int64_t n_whole = 0, n_partial = 0;
  };
  auto TokensOf = [&](int64_t start) {
    Tokens t;
    for (int64_t i = 0; i < nq; ++i) {
      if (first[i] <= start && start + bs <= len[i]) {
        t.whole[t.n_whole++] = i;
      } else if (start < len[i] && start + bs > first[i]) {
        t.partial[t.n_partial++] = i;
      }
    }
    return t;
  };
  // The item's query heads of KV head g.
  struct HeadRange {
    int64_t lo, hi;
  };
  auto HeadsOf = [&](int64_t g) {
    return HeadRange{Max(it0.h0, g * it0.group),
                     Min(it0.h1, (g + 1) * it0.group)};
  };
  __m128 max4[kMaxTileQueries][kMaxHeadsPerItem];
  float max1[kMaxTileQueries][kMaxHeadsPerItem];
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t hh = 0; hh < heads; ++hh) {
      max4[i][hh] = _mm_set1_ps(-__builtin_inff());
      max1[i][hh] = -__builtin_inff();
    }
  }
  // Whole-block tokens scored together: 3 keeps 12 chains and 6 partial
  // sums in registers (4 spilled and measured 3-8% slower in gemm_bench's
  // prefill attention; 2 was slower still).
  constexpr int kScoreGroup = 3;
  alignas(64) float kt[hd * bs];  // a block's keys, transposed
  alignas(64) float vb[bs * hd];  // a block's values as fp32 rows
  const int64_t first_block = first[0] / bs;
  const int64_t last_block = (len[nq - 1] - 1) / bs;
  for (int64_t block = first_block; block <= last_block; ++block) {
    PrefetchAround(it0, block, first_block, last_block, kvh0, range_bytes);
    const int64_t start = block * bs;
    const Tokens tokens = TokensOf(start);
    for (int64_t g = kvh0; g <= kvh1; ++g) {
      const uint8_t* k = KeyRows(it0, block, g);
      if (tokens.n_whole > 0) {
        for (int w = 0; w < W; ++w) {
          __m512 r[16];
          for (int j = 0; j < 16; ++j) r[j] = R::Load16(k + j * rb, w);
          Transpose16(r);
          for (int l = 0; l < 16; ++l)
            _mm512_store_ps(kt + 16 * (16 * w + l), r[l]);
        }
      }
      const auto [h_lo, h_hi] = HeadsOf(g);
      for (int64_t h = h_lo; h < h_hi; ++h) {
        const int64_t hh = h - it0.h0;
        InGroupsOf<kScoreGroup>(tokens.n_whole, [&]<int N>(int64_t g0) {
          const float* qh[N];
          for (int n = 0; n < N; ++n)
            qh[n] = it0.q + tokens.whole[g0 + n] * q_stride + h * hd;
          __m512 s[N];
          ScoreTransposedBlocks<W, N>(qh, kt, it0.scale, s);
          for (int n = 0; n < N; ++n) {
            const int64_t i = tokens.whole[g0 + n];
            _mm512_storeu_ps(sc_of(i, hh) + (start - first[i]), s[n]);
            const __m256 m8 = _mm256_max_ps(_mm512_castps512_ps256(s[n]),
                                            _mm512_extractf32x8_ps(s[n], 1));
            max4[i][hh] = _mm_max_ps(max4[i][hh],
                                     _mm_max_ps(_mm256_castps256_ps128(m8),
                                                _mm256_extractf128_ps(m8, 1)));
          }
        });
        for (int64_t x = 0; x < tokens.n_partial; ++x) {
          const int64_t i = tokens.partial[x];
          ScoreSlots<W, Rows>(it0.q + i * q_stride + h * hd, k,
                              Max(first[i] - start, 0), Min(bs, len[i] - start),
                              start - first[i], it0.scale, sc_of(i, hh),
                              &max4[i][hh], &max1[i][hh]);
        }
      }
    }
  }
  float inv_sum[kMaxTileQueries][kMaxHeadsPerItem];
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t hh = 0; hh < heads; ++hh) {
      inv_sum[i][hh] =
          1.0f / Exp16MinusMaxInPlace(sc_of(i, hh), len[i] - first[i],
                                      MaxOf(max4[i][hh], max1[i][hh]));
      float* out = it0.out + i * out_stride + (it0.h0 + hh) * hd;
      for (int w = 0; w < W; ++w)
        _mm512_storeu_ps(out + 16 * w, _mm512_setzero_ps());
    }
  }
  // Whole-block tokens accumulated together: N * W <= 16 accumulators.
  constexpr int kValueGroup = W >= 4 ? 16 / W : 4;
  for (int64_t block = first_block; block <= last_block; ++block) {
    const int64_t start = block * bs;
    const int64_t rows = Min(bs, len[nq - 1] - start);
    const Tokens tokens = TokensOf(start);
    for (int64_t g = kvh0; g <= kvh1; ++g) {
      const uint8_t* v = ValueRows(it0, block, g);
      for (int64_t j = 0; j < rows; ++j) {
        for (int w = 0; w < W; ++w)
          _mm512_store_ps(vb + j * hd + 16 * w, R::Load16(v + j * rb, w));
      }
      const auto [h_lo, h_hi] = HeadsOf(g);
      for (int64_t h = h_lo; h < h_hi; ++h) {
        const int64_t hh = h - it0.h0;
        InGroupsOf<kValueGroup>(tokens.n_whole, [&]<int N>(int64_t g0) {
          const float* p[N];
          float* out[N];
          for (int n = 0; n < N; ++n) {
            const int64_t i = tokens.whole[g0 + n];
            p[n] = sc_of(i, hh) + (start - first[i]);
            out[n] = it0.out + i * out_stride + h * hd;
          }
          AccumulateBlockValues<W, N>(vb, p, out);
        });
        for (int64_t x = 0; x < tokens.n_partial; ++x) {
          const int64_t i = tokens.partial[x];
          AccumulateValues<W, F32Rows>(
              reinterpret_cast<const uint8_t*>(vb), Max(first[i] - start, 0),
              Min(bs, len[i] - start), sc_of(i, hh) + (start - first[i]),
              it0.out + i * out_stride + h * hd);
        }
      }
    }
  }
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t hh = 0; hh < heads; ++hh)
      ScaleOut(it0.out + i * out_stride + (it0.h0 + hh) * hd, W,
               inv_sum[i][hh]);
  }
}

// Calls run.template operator()<W>() with W = head_dim / 16 for the head
// sizes the kernels hold in registers (16, 32, 64, 128); false for others.
template <class Run>
bool WithHeadWidth(int64_t head_dim, Run run) {
  switch (head_dim) {
    case 16:
      run.template operator()<1>();
      return true;
    case 32:
      run.template operator()<2>();
      return true;
    case 64:
      run.template operator()<4>();
      return true;
    case 128:
      run.template operator()<8>();
      return true;
  }
  return false;
}

template <template <int> class Rows>
bool AttendIn(const AttentionItem& it, float* scores, int64_t max_context) {
  return WithHeadWidth(
      it.head_dim, [&]<int W>() { Attend<W, Rows>(it, scores, max_context); });
}

template <template <int> class Rows>
bool AttendTileIn(const AttentionItem& it, int64_t nq, int64_t q_stride,
                  int64_t out_stride, int64_t window, float* scores,
                  int64_t max_context) {
  if (it.block_size != 16) return false;
  return WithHeadWidth(it.head_dim, [&]<int W>() {
    AttendTileOf<W, Rows>(it, nq, q_stride, out_stride, window, scores,
                          max_context);
  });
}

}  // namespace

bool AttendTile(const AttentionItem& first, int64_t queries, int64_t q_stride,
                int64_t out_stride, int64_t window, RowFormat format,
                float* scores, int64_t max_context) {
  // The per-token state is on the stack, sized for kMaxTileQueries.
  if (queries > kMaxTileQueries) return false;
  switch (format) {
    case RowFormat::kF32:
      return AttendTileIn<F32Rows>(first, queries, q_stride, out_stride, window,
                                   scores, max_context);
    case RowFormat::kF16:
      return AttendTileIn<F16Rows>(first, queries, q_stride, out_stride, window,
                                   scores, max_context);
    case RowFormat::kQ8_0:
      return AttendTileIn<Q8Rows>(first, queries, q_stride, out_stride, window,
                                  scores, max_context);
  }
  return false;
}

bool AttendHeads(const AttentionItem& item, RowFormat format, float* scores,
                 int64_t max_context) {
  switch (format) {
    case RowFormat::kF32:
      return AttendIn<F32Rows>(item, scores, max_context);
    case RowFormat::kF16:
      return AttendIn<F16Rows>(item, scores, max_context);
    case RowFormat::kQ8_0:
      return AttendIn<Q8Rows>(item, scores, max_context);
  }
  return false;
}

}  // namespace lumen::engine::kernels::avx512
