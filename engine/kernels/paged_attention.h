#pragma once
// Causal attention of a batch of query tokens over a paged KV cache, over
// the whole context or a sliding window of it. A work item is some query
// heads of one token (on AVX-512 a token outside a tile, such as a decoding
// one, gets all its heads, as many as a thread's scratch rows hold; else
// those of one KV head; fewer when there are few tokens or one's context
// dominates the step, so that every thread has work) or of a tile (below),
// spread over OpenMP threads; it walks the sequence's blocks once per pass,
// reading each block's rows of all its heads in memory order, so grouped
// query heads read their shared KV rows once. On AVX-512, up to
// kMaxTileQueries consecutive tokens of a prefill chunk form one item (with
// the query heads of one KV head) that converts each block once for all of
// them and scores whole blocks from transposed keys (no horizontal sums per
// token). A query's result depends only on its own row and its sequence's
// cache, never on the rest of the batch, nor on how heads or tokens were
// grouped into items: every path performs the same operations in the same
// order on each query.

#include <cstdint>

#include "engine/kv_cache.h"

namespace lumen::engine::kernels {

struct AttentionQuery {
  int32_t position;            // attends to positions [0, position]
  const int32_t* block_table;  // of its sequence
};

struct AttentionShape {
  int64_t n_heads;
  int64_t n_kv_heads;
  int64_t head_dim;
  float scale;  // usually 1 / sqrt(head_dim)
  // > 0: a query at position p sees only keys at (p - window, p], and the
  // blocks before them are never read. 0: keys at [0, p].
  int64_t window = 0;
};

// Consecutive tokens of one sequence that one work item of the AVX-512 tile
// kernel attends together: up to kMaxTileQueries for head sizes 16, 32, 64
// and 128 while their score rows fit 4 MiB per thread, else 1.
// PagedAttention tiles only on AVX-512 and blocks of 16 rows; the scratch
// is sized for tiles on any CPU (at most 4 MiB more per thread), so that
// it stays large enough whichever kernels run.
int64_t AttentionTileQueries(const AttentionShape& shape, int64_t max_context);

// Floats of scratch one thread needs: a row of max_context per query head
// of a KV head, for each of AttentionTileQueries tokens (a decoding token's
// item may use all of those rows, one per head).
int64_t AttentionScratchPerThread(const AttentionShape& shape,
                                  int64_t max_context);

// q: n rows of n_heads * head_dim starting every q_stride floats.
// out: [n, n_heads * head_dim]. scratch: scratch_threads times
// AttentionScratchPerThread floats, where every position is < max_context;
// at most scratch_threads threads run.
void PagedAttention(const float* q, int64_t q_stride,
                    const AttentionQuery* queries, int64_t n,
                    const KvCache& cache, int64_t layer,
                    const AttentionShape& shape, float* scratch,
                    int scratch_threads, int64_t max_context, float* out);

}  // namespace lumen::engine::kernels
