#pragma once
// Causal attention of a batch of query tokens over a paged KV cache, over
// the whole context or a sliding window of it. Each (token, head) pair is
// one work item, spread over OpenMP threads; grouped query heads read their
// shared KV head. A query's result depends only on its own row and its
// sequence's cache, never on the rest of the batch.

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

// q: n rows of n_heads * head_dim starting every q_stride floats.
// out: [n, n_heads * head_dim]. scratch: [scratch_threads * max_context]
// floats, where every position is < max_context; at most scratch_threads
// threads run.
void PagedAttention(const float* q, int64_t q_stride,
                    const AttentionQuery* queries, int64_t n,
                    const KvCache& cache, int64_t layer,
                    const AttentionShape& shape, float* scratch,
                    int scratch_threads, int64_t max_context, float* out);

}  // namespace lumen::engine::kernels
