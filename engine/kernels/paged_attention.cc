#include "engine/kernels/paged_attention.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/kernels/attention_item.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/horizontal_sum.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/kernels/vec_exp.h"

namespace lumen::engine::kernels {

// scores[p] = exp(scores[p] - max); returns their sum.
float ExpMinusMaxInPlace(float* scores, int64_t len, float max) {
  const __m256 m = _mm256_set1_ps(max);
  __m256 acc = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= len; p += 8) {
    const __m256 e = Exp256(_mm256_sub_ps(_mm256_loadu_ps(scores + p), m));
    _mm256_storeu_ps(scores + p, e);
    acc = _mm256_add_ps(acc, e);
  }
  float tail[8] = {};
  float* rest = tail;
  const int64_t left = len - p;
  for (int64_t i = 0; i < left; ++i) rest[i] = scores[p + i] - max;
  for (int64_t i = left; i < 8; ++i) rest[i] = -INFINITY;
  const __m256 e = Exp256(_mm256_loadu_ps(rest));
  _mm256_storeu_ps(rest, e);
  for (int64_t i = 0; i < left; ++i) scores[p + i] = rest[i];
  // Lanes past the end hold exp(-87), about 1.6e-38: zero them.
  acc = _mm256_add_ps(
      acc, _mm256_blendv_ps(_mm256_setzero_ps(), e,
                            _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                                _mm256_set1_epi32(static_cast<int>(left)),
                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)))));
  return HorizontalSum(acc);
}

namespace {

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
// values during the key pass, for the value pass. Into L2, as the AVX-512
// kernel (paged_attention_avx512.cc), where into L1 was measured a fifth
// slower.
constexpr int64_t kPrefetchBlocks = 4;
inline void PrefetchRows(const uint8_t* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64)
    _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T1);
}

// How attention reads a cached row of 8 * V values (kv_cache.h), 8 at a
// time as fp32.
template <int V>
struct F32Rows {
  static constexpr int64_t kRowBytes = 32 * V;
  static __m256 Load8(const uint8_t* row, int v) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + 8 * v);
  }
};
template <int V>
struct F16Rows {
  static constexpr int64_t kRowBytes = 16 * V;
  static __m256 Load8(const uint8_t* row, int v) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * v)));
  }
};
// int8 codes, then one fp16 scale per block of kBlock values. A block's
// scale is loaded by each of its Load8 calls; in the unrolled loops the
// compiler loads it once.
template <int V>
struct Q8Rows {
  static constexpr int kBlock = V >= 4 ? 32 : 8 * V;
  static constexpr int64_t kRowBytes = 8 * V + 2 * (8 * V / kBlock);
  static __m256 Load8(const uint8_t* row, int v) {
    const __m256 codes = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * v))));
    uint16_t h;
    std::memcpy(&h, row + 8 * V + 2 * (8 * v / kBlock), 2);
    return _mm256_mul_ps(codes, _mm256_set1_ps(_cvtsh_ss(h)));
  }
};

// The item's heads with head_dim = 8 * V held in registers, rows read by
// Rows<V>. Each pass walks the sequence's blocks once and, within a block,
// every head of the item: the item's key (then value) rows of a block lie
// together, so the reads run through memory in order (the next block is
// prefetched, which the hardware cannot guess), and grouped query heads
// find their shared rows in L1. Per head, the arithmetic (so every bit of
// the result) does not depend on which heads share the item.
// scores: (h1 - h0) rows of max_context floats.
template <int V, template <int> class Rows>
void AttendHeads(const AttentionItem& it, float* scores, int64_t max_context) {
  using R = Rows<V>;
  constexpr int64_t rb = R::kRowBytes;
  const int64_t bs = it.block_size;
  const int64_t heads = it.h1 - it.h0;
  const int64_t kvh0 = it.h0 / it.group;
  const int64_t range_bytes = ((it.h1 - 1) / it.group + 1 - kvh0) * bs * rb;
  const int64_t first_block = it.first / bs, last_block = (it.len - 1) / bs;
  // Each head's running maximum, kept four lanes wide (a scalar max chain
  // was 6% of this kernel's perf samples).
  __m128 max4[kMaxHeadsPerItem];
  float max1[kMaxHeadsPerItem];
  for (int64_t i = 0; i < heads; ++i) {
    max4[i] = _mm_set1_ps(-INFINITY);
    max1[i] = -INFINITY;
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
    const int64_t slots = std::min(bs, it.len - start);
    const int64_t first_slot = std::max<int64_t>(it.first - start, 0);
    const int64_t base = start - it.first;  // sc[base + j]: slot j
    for (int64_t i = 0; i < heads; ++i) {
      const int64_t h = it.h0 + i;
      const uint8_t* k = KeyRows(it, block, h / it.group);
      float* sc = scores + i * max_context;
      __m256 q[V];
      for (int v = 0; v < V; ++v)
        q[v] = _mm256_loadu_ps(it.q + h * 8 * V + 8 * v);
      int64_t j = first_slot;
      for (; j + 4 <= slots; j += 4) {
        // Two partial sums per slot halve the FMA dependency chains.
        __m256 acc[4], acc2[4];
        for (int s = 0; s < 4; ++s) {
          const uint8_t* row = k + (j + s) * rb;
          acc[s] = _mm256_mul_ps(q[0], R::Load8(row, 0));
          acc2[s] = V > 1 ? _mm256_mul_ps(q[V > 1 ? 1 : 0], R::Load8(row, 1))
                          : _mm256_setzero_ps();
          for (int v = 2; v < V; v += 2) {
            acc[s] = _mm256_fmadd_ps(q[v], R::Load8(row, v), acc[s]);
            if (v + 1 < V) {
              acc2[s] =
                  _mm256_fmadd_ps(q[v + 1], R::Load8(row, v + 1), acc2[s]);
            }
          }
          acc[s] = _mm256_add_ps(acc[s], acc2[s]);
        }
        const __m256 t0 = _mm256_hadd_ps(acc[0], acc[1]);
        const __m256 t1 = _mm256_hadd_ps(acc[2], acc[3]);
        const __m256 u = _mm256_hadd_ps(t0, t1);
        __m128 four =
            _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
        four = _mm_mul_ps(four, _mm_set1_ps(it.scale));
        max4[i] = _mm_max_ps(max4[i], four);
        _mm_storeu_ps(sc + (base + j), four);
      }
      for (; j < slots; ++j) {
        const uint8_t* row = k + j * rb;
        __m256 acc = _mm256_mul_ps(q[0], R::Load8(row, 0));
        for (int v = 1; v < V; ++v)
          acc = _mm256_fmadd_ps(q[v], R::Load8(row, v), acc);
        sc[base + j] = HorizontalSum(acc) * it.scale;
        max1[i] = std::max(max1[i], sc[base + j]);
      }
    }
  }
  float inv_sum[kMaxHeadsPerItem];
  for (int64_t i = 0; i < heads; ++i) {
    __m128 m = _mm_max_ps(max4[i], _mm_movehl_ps(max4[i], max4[i]));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    inv_sum[i] =
        1.0f / ExpMinusMaxInPlace(scores + i * max_context, it.len - it.first,
                                  std::max(max1[i], _mm_cvtss_f32(m)));
    std::memset(it.out + (it.h0 + i) * 8 * V, 0, 32 * V);
  }
  for (int64_t block = first_block; block <= last_block; ++block) {
    const int64_t start = block * bs;
    const int64_t slots = std::min(bs, it.len - start);
    const int64_t first_slot = std::max<int64_t>(it.first - start, 0);
    const int64_t base = start - it.first;
    for (int64_t i = 0; i < heads; ++i) {
      const int64_t h = it.h0 + i;
      const uint8_t* vals = ValueRows(it, block, h / it.group);
      const float* sc = scores + i * max_context;
      float* out = it.out + h * 8 * V;
      __m256 o[V];
      for (int v = 0; v < V; ++v) o[v] = _mm256_loadu_ps(out + 8 * v);
      for (int64_t j = first_slot; j < slots; ++j) {
        const __m256 p = _mm256_set1_ps(sc[base + j]);
        const uint8_t* row = vals + j * rb;
        for (int v = 0; v < V; ++v)
          o[v] = _mm256_fmadd_ps(p, R::Load8(row, v), o[v]);
      }
      for (int v = 0; v < V; ++v) _mm256_storeu_ps(out + 8 * v, o[v]);
    }
  }
  for (int64_t i = 0; i < heads; ++i) {
    float* out = it.out + (it.h0 + i) * 8 * V;
    const __m256 inv = _mm256_set1_ps(inv_sum[i]);
    for (int v = 0; v < V; ++v) {
      _mm256_storeu_ps(out + 8 * v,
                       _mm256_mul_ps(_mm256_loadu_ps(out + 8 * v), inv));
    }
  }
}

// q . row and y += a * row over head_dim values, for any head size.
float RowDot(RowFormat f, const float* q, const uint8_t* row, int64_t hd) {
  if (f == RowFormat::kF32)
    return Dot(q, reinterpret_cast<const float*>(row), hd);
  if (f == RowFormat::kF16)
    return Dot(q, reinterpret_cast<const uint16_t*>(row), hd);
  const int64_t len = KvQ8BlockLength(hd);
  float block[32], sum = 0.0f;
  for (int64_t i = 0; i * len < hd; ++i) {
    LoadKvQ8Block(row, hd, i, block);
    sum += Dot(q + i * len, block, len);
  }
  return sum;
}
void RowAxpy(RowFormat f, float a, const uint8_t* row, int64_t hd, float* y) {
  if (f == RowFormat::kF32)
    return Axpy(a, reinterpret_cast<const float*>(row), y, hd);
  if (f == RowFormat::kF16)
    return Axpy(a, reinterpret_cast<const uint16_t*>(row), y, hd);
  const int64_t len = KvQ8BlockLength(hd);
  float block[32];
  for (int64_t i = 0; i * len < hd; ++i) {
    LoadKvQ8Block(row, hd, i, block);
    Axpy(a, block, y + i * len, len);
  }
}

// Any head size: one head at a time, row by row (scores: one row).
void AttendHeadsGeneric(const AttentionItem& it, RowFormat f, float* scores) {
  const int64_t hd = it.head_dim, bs = it.block_size;
  for (int64_t h = it.h0; h < it.h1; ++h) {
    const float* q = it.q + h * hd;
    float* out = it.out + h * hd;
    const int64_t kvh = h / it.group;
    auto key = [&](int64_t p) {
      return KeyRows(it, p / bs, kvh) + p % bs * it.row_bytes;
    };
    auto value = [&](int64_t p) {
      return ValueRows(it, p / bs, kvh) + p % bs * it.row_bytes;
    };
    float max_score = -INFINITY;
    for (int64_t p = it.first; p < it.len; ++p) {
      scores[p - it.first] = RowDot(f, q, key(p), hd) * it.scale;
      max_score = std::max(max_score, scores[p - it.first]);
    }
    float sum = 0.0f;
    for (int64_t i = 0; i < it.len - it.first; ++i) {
      scores[i] = std::exp(scores[i] - max_score);
      sum += scores[i];
    }
    std::memset(out, 0, hd * sizeof(float));
    for (int64_t p = it.first; p < it.len; ++p)
      RowAxpy(f, scores[p - it.first] / sum, value(p), hd, out);
  }
}

template <template <int> class Rows>
bool AttendInRegisters(const AttentionItem& it, float* scores,
                       int64_t max_context) {
  switch (it.head_dim) {
    case 8:
      AttendHeads<1, Rows>(it, scores, max_context);
      return true;
    case 16:
      AttendHeads<2, Rows>(it, scores, max_context);
      return true;
    case 32:
      AttendHeads<4, Rows>(it, scores, max_context);
      return true;
    case 64:
      AttendHeads<8, Rows>(it, scores, max_context);
      return true;
    case 128:
      AttendHeads<16, Rows>(it, scores, max_context);
      return true;
  }
  return false;
}

// The AVX-512 register kernel where the CPU has it, else the AVX2 one,
// else (other head sizes) the generic one.
void AttendItem(const AttentionItem& it, RowFormat f, bool avx512,
                float* scores, int64_t max_context) {
  if (avx512 && avx512::AttendHeads(it, f, scores, max_context)) return;
  bool done = false;
  switch (f) {
    case RowFormat::kF32:
      done = AttendInRegisters<F32Rows>(it, scores, max_context);
      break;
    case RowFormat::kF16:
      done = AttendInRegisters<F16Rows>(it, scores, max_context);
      break;
    case RowFormat::kQ8_0:
      done = AttendInRegisters<Q8Rows>(it, scores, max_context);
      break;
  }
  if (!done) AttendHeadsGeneric(it, f, scores);
}

RowFormat FormatOf(KvElement e) {
  switch (e) {
    case KvElement::kF32:
      return RowFormat::kF32;
    case KvElement::kF16:
      return RowFormat::kF16;
    case KvElement::kQ8_0:
      return RowFormat::kQ8_0;
  }
  return RowFormat::kF32;
}

// x >= 1 heads rounded down to whole KV heads of `group`, or below one KV
// head to a divisor of group, so that no item straddles two KV heads.
int64_t WholeKvHeads(int64_t x, int64_t group) {
  if (x >= group) return x - x % group;
  while (group % x != 0) --x;
  return x;
}

// One work item: query heads [h0, h1) of the tokens of tile `tile`.
struct WorkItem {
  int32_t tile, h0, h1;
};

// The step's query tokens in tiles: runs of up to `tile_queries`
// consecutive positions of one sequence (a prefill chunk). tile_starts[k]
// is tile k's first token; a last entry n closes the list. Grown, never
// shrunk: a step allocates only when it has more tiles than any before.
void SplitIntoTiles(const AttentionQuery* queries, int64_t n,
                    int64_t tile_queries, std::vector<int32_t>* tile_starts) {
  tile_starts->clear();
  for (int64_t t = 0; t < n; ++t) {
    const bool joins = t > 0 && t - tile_starts->back() < tile_queries &&
                       queries[t].block_table == queries[t - 1].block_table &&
                       queries[t].position == queries[t - 1].position + 1;
    if (!joins) tile_starts->push_back(static_cast<int32_t>(t));
  }
  tile_starts->push_back(static_cast<int32_t>(n));
}

// Score rows a tile's token needs: its query heads of a KV head (a lone
// token's item may use all of a thread's rows).
int64_t ScoreRowsPerToken(const AttentionShape& s) {
  return std::min<int64_t>(s.n_heads / s.n_kv_heads, kMaxHeadsPerItem);
}

// A tile's score rows take at most this much scratch per thread (beyond
// one token's): long contexts tile fewer tokens, or none.
constexpr int64_t kTileScoreBudgetBytes = int64_t{4} << 20;

}  // namespace

int64_t AttentionTileQueries(const AttentionShape& s, int64_t max_context) {
  // Whatever instruction set runs now: scratch sized by this stays large
  // enough if a test switches the kernels' ISA after allocating it.
  const bool kernel = s.head_dim == 16 || s.head_dim == 32 ||
                      s.head_dim == 64 || s.head_dim == 128;
  if (!kernel) return 1;
  const int64_t token_bytes = ScoreRowsPerToken(s) *
                              std::max<int64_t>(max_context, 1) *
                              static_cast<int64_t>(sizeof(float));
  return std::clamp<int64_t>(kTileScoreBudgetBytes / token_bytes, 1,
                             kMaxTileQueries);
}

int64_t AttentionScratchPerThread(const AttentionShape& s,
                                  int64_t max_context) {
  return AttentionTileQueries(s, max_context) * ScoreRowsPerToken(s) *
         max_context;
}

void PagedAttention(const float* q, int64_t q_stride,
                    const AttentionQuery* queries, int64_t n,
                    const KvCache& cache, int64_t layer,
                    const AttentionShape& s, float* scratch,
                    int scratch_threads, int64_t max_context, float* out) {
  const int64_t hd = s.head_dim;
  KvCache& kv = const_cast<KvCache&>(cache);  // read-only use
  const RowFormat format = FormatOf(kv.element());
  const bool avx512 = ActiveSmallGemmIsa() == SmallGemmIsa::kAvx512;
  // Tokens of a prefill chunk share each KV block's reads (the tile kernel
  // keeps every token's bits, so tiling is invisible).
  const int64_t tile_queries = avx512 && kv.shape().block_size == 16
                                   ? AttentionTileQueries(s, max_context)
                                   : 1;
  thread_local std::vector<int32_t> tile_starts;
  SplitIntoTiles(queries, n, tile_queries, &tile_starts);
  const int64_t tiles = static_cast<int64_t>(tile_starts.size()) - 1;
  // Never more threads than there are scratch rows, whatever team the
  // calling thread has.
  const int team = std::min(omp_get_max_threads(), scratch_threads);
  const int64_t stride = AttentionScratchPerThread(s, max_context);
  // Query heads per work item. A prefill tile's item takes at most the
  // heads of one KV head: its scratch holds that many score rows per token.
  // So does a lone token's (a tile of one token: every token that the
  // AVX-512 tile kernel does not group) on AVX2, but on AVX-512 it takes up
  // to all of its heads, as many as a thread's scratch rows hold. A KV block
  // stores the rows of all its heads together; `gemm_bench
  // --attention_only` (16 sequences, f16 cache, contexts 128 to 2048)
  // measured one AVX-512 item per token 20-35% faster than an item per KV
  // head, and the AVX2 kernel slower (at context 2048, 64-67 against 49-55
  // ms per step). Every item also holds at most a 4 * team-th of the step's
  // work, positions times heads (or one head, where one head is more), so
  // that every thread has work and one long context among short ones still
  // spreads over the threads; and whole KV heads (WholeKvHeads).
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t tile_heads = std::min(group, kMaxHeadsPerItem);
  const int64_t lone_heads =
      avx512 ? std::max(tile_heads,
                        std::min({s.n_heads, kMaxHeadsPerItem,
                                  AttentionTileQueries(s, max_context) *
                                      ScoreRowsPerToken(s)}))
             : tile_heads;
  // The positions a tile's first token reads (its others read a few more).
  auto span_of = [&](int64_t tile) {
    const int64_t len = queries[tile_starts[tile]].position + 1;
    return s.window > 0 ? std::min(len, s.window) : len;
  };
  auto tokens_of = [&](int64_t tile) {
    return int64_t{tile_starts[tile + 1] - tile_starts[tile]};
  };
  int64_t work_total = 0;
  for (int64_t tile = 0; tile < tiles; ++tile)
    work_total += tokens_of(tile) * span_of(tile) * s.n_heads;
  const int64_t item_work = std::max<int64_t>(1, work_total / (4 * team));
  // Grown, never shrunk, like tile_starts. The workers read it through
  // items_of_step below: a worker naming `work` would see its own, empty.
  thread_local std::vector<WorkItem> work;
  work.clear();
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t tokens = tokens_of(tile);
    const int64_t by_work = item_work / (tokens * span_of(tile));
    const int64_t step = WholeKvHeads(
        std::clamp<int64_t>(by_work, 1, tokens == 1 ? lone_heads : tile_heads),
        group);
    for (int64_t h0 = 0; h0 < s.n_heads; h0 += step) {
      work.push_back({static_cast<int32_t>(tile), static_cast<int32_t>(h0),
                      static_cast<int32_t>(std::min(h0 + step, s.n_heads))});
    }
  }
  const uint8_t* keys = kv.Keys<uint8_t>(0, layer);
  const uint8_t* values = kv.Values<uint8_t>(0, layer);
  // A thread takes a few neighbouring items at a time: their rows lie
  // together (one item per grab measured 30% slower at 512 positions, the
  // threads' reads interleaving), unless that would leave a thread idle.
  const int64_t items = static_cast<int64_t>(work.size());
  const int chunk =
      static_cast<int>(std::clamp<int64_t>(items / (4 * team), 1, 4));
  const int32_t* starts = tile_starts.data();
  const WorkItem* items_of_step = work.data();
#pragma omp parallel for schedule(dynamic, chunk) num_threads(team)
  for (int64_t item = 0; item < items; ++item) {
    const WorkItem& w = items_of_step[item];
    const int64_t t = starts[w.tile], tokens = starts[w.tile + 1] - t;
    const AttentionQuery& query = queries[t];
    const int64_t len = query.position + 1;
    const AttentionItem it{
        q + t * q_stride,
        out + t * s.n_heads * hd,
        w.h0,
        w.h1,
        s.n_heads / s.n_kv_heads,
        hd,
        s.scale,
        s.window > 0 ? std::max<int64_t>(0, len - s.window) : 0,
        len,
        query.block_table,
        keys,
        values,
        kv.bytes_per_block(),
        kv.shape().block_size,
        kv.row_bytes()};
    float* thread_scratch = scratch + omp_get_thread_num() * stride;
    if (tokens > 1 &&
        avx512::AttendTile(it, tokens, q_stride, s.n_heads * hd, s.window,
                           format, thread_scratch, max_context)) {
      continue;
    }
    for (int64_t i = 0; i < tokens; ++i) {
      AttentionItem one = it;
      one.q += i * q_stride;
      one.out += i * s.n_heads * hd;
      one.len = len + i;
      one.first = s.window > 0 ? std::max<int64_t>(0, one.len - s.window) : 0;
      AttendItem(one, format, avx512, thread_scratch, max_context);
    }
  }
}

}  // namespace lumen::engine::kernels
