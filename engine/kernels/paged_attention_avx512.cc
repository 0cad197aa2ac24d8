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
// hardware prefetcher restarts at every one: keys are fetched kPrefetchBlocks
// ahead (a block is processed faster than DRAM answers), and each block's
// values during the key pass, for the value pass. Into L2: into L1, 16
// sequences at context 512 ran a fifth slower in `lumen bench engine`
// (Zen 5; presumably L1's fill buffers then bound the misses in flight).
constexpr int64_t kPrefetchBlocks = 4;
inline void PrefetchRows(const uint8_t* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64)
    _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T1);
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
  for (int64_t block = first_block; block <= last_block; ++block) {
    // The first block asks for the next kPrefetchBlocks, each later one
    // for the block kPrefetchBlocks ahead.
    for (int64_t b = block == first_block ? block + 1 : block + kPrefetchBlocks;
         b <= block + kPrefetchBlocks && b <= last_block; ++b) {
      PrefetchRows(KeyRows(it, b, kvh0), range_bytes);
    }
    PrefetchRows(ValueRows(it, block, kvh0), range_bytes);
    const int64_t start = block * bs;
    const int64_t slots = Min(bs, it.len - start);
    const int64_t first_slot = Max(it.first - start, 0);
    const int64_t base = start - it.first;  // sc[base + j]: slot j
    for (int64_t i = 0; i < heads; ++i) {
      const int64_t h = it.h0 + i;
      const uint8_t* k = KeyRows(it, block, h / it.group);
      float* sc = scores + i * max_context;
      __m512 q[W];
      for (int w = 0; w < W; ++w)
        q[w] = _mm512_loadu_ps(it.q + h * 16 * W + 16 * w);
      int64_t j = first_slot;
      for (; j + 4 <= slots; j += 4) {
        __m512 acc[4];
        for (int s = 0; s < 4; ++s) {
          const uint8_t* row = k + (j + s) * rb;
          acc[s] = _mm512_mul_ps(q[0], R::Load16(row, 0));
          for (int w = 1; w < W; ++w)
            acc[s] = _mm512_fmadd_ps(q[w], R::Load16(row, w), acc[s]);
        }
        const __m128 four = _mm_mul_ps(Sum4(acc[0], acc[1], acc[2], acc[3]),
                                       _mm_set1_ps(it.scale));
        max4[i] = _mm_max_ps(max4[i], four);
        _mm_storeu_ps(sc + (base + j), four);
      }
      for (; j < slots; ++j) {
        const uint8_t* row = k + j * rb;
        __m512 acc = _mm512_mul_ps(q[0], R::Load16(row, 0));
        for (int w = 1; w < W; ++w)
          acc = _mm512_fmadd_ps(q[w], R::Load16(row, w), acc);
        sc[base + j] = _mm512_reduce_add_ps(acc) * it.scale;
        if (sc[base + j] > max1[i]) max1[i] = sc[base + j];
      }
    }
  }
  float inv_sum[kMaxHeadsPerItem];
  for (int64_t i = 0; i < heads; ++i) {
    __m128 m = _mm_max_ps(max4[i], _mm_movehl_ps(max4[i], max4[i]));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float m4 = _mm_cvtss_f32(m);
    inv_sum[i] =
        1.0f / ExpMinusMaxInPlace(scores + i * max_context, it.len - it.first,
                                  m4 > max1[i] ? m4 : max1[i]);
    float* out = it.out + (it.h0 + i) * 16 * W;
    for (int w = 0; w < W; ++w)
      _mm512_storeu_ps(out + 16 * w, _mm512_setzero_ps());
  }
  for (int64_t block = first_block; block <= last_block; ++block) {
    const int64_t start = block * bs;
    const int64_t slots = Min(bs, it.len - start);
    const int64_t first_slot = Max(it.first - start, 0);
    const int64_t base = start - it.first;  // sc[base + j]: slot j
    for (int64_t i = 0; i < heads; ++i) {
      const int64_t h = it.h0 + i;
      const uint8_t* vals = ValueRows(it, block, h / it.group);
      const float* sc = scores + i * max_context;
      float* out = it.out + h * 16 * W;
      __m512 o[W];
      for (int w = 0; w < W; ++w) o[w] = _mm512_loadu_ps(out + 16 * w);
      for (int64_t j = first_slot; j < slots; ++j) {
        const __m512 p = _mm512_set1_ps(sc[base + j]);
        const uint8_t* row = vals + j * rb;
        for (int w = 0; w < W; ++w)
          o[w] = _mm512_fmadd_ps(p, R::Load16(row, w), o[w]);
      }
      for (int w = 0; w < W; ++w) _mm512_storeu_ps(out + 16 * w, o[w]);
    }
  }
  for (int64_t i = 0; i < heads; ++i) {
    float* out = it.out + (it.h0 + i) * 16 * W;
    const __m512 inv = _mm512_set1_ps(inv_sum[i]);
    for (int w = 0; w < W; ++w)
      _mm512_storeu_ps(out + 16 * w,
                       _mm512_mul_ps(_mm512_loadu_ps(out + 16 * w), inv));
  }
}

template <template <int> class Rows>
bool AttendIn(const AttentionItem& it, float* scores, int64_t max_context) {
  switch (it.head_dim) {
    case 16:
      Attend<1, Rows>(it, scores, max_context);
      return true;
    case 32:
      Attend<2, Rows>(it, scores, max_context);
      return true;
    case 64:
      Attend<4, Rows>(it, scores, max_context);
      return true;
    case 128:
      Attend<8, Rows>(it, scores, max_context);
      return true;
  }
  return false;
}

}  // namespace

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
