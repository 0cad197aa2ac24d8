#pragma once
// One work item of PagedAttention (paged_attention.h) as its instruction-set
// kernels see it: plain pointers and sizes, so that the AVX-512 kernel's
// file needs no library headers.

#include <cstdint>

namespace lumen::engine::kernels {

// Query heads one work item attends at most (their state is on the stack).
inline constexpr int64_t kMaxHeadsPerItem = 64;
// Consecutive query tokens of one sequence (a prefill chunk) that one tile
// item attends together, converting and transposing each KV block once for
// all of them (16 instead of 8: single-thread prefill attention 46 -> 58
// GFLOP/s in gemm_bench). 32 was tried: in two sets of alternated
// `gemm_bench --attention_only --threads 2 --cpu_time` runs it gained 5-15%
// by the minimum in one and moved within +-3% in the other (also at context
// 2048 with 3 query heads per KV head), for 25 KiB more stack per tile
// kernel frame; not kept.
inline constexpr int64_t kMaxTileQueries = 16;

// The query heads [h0, h1) of one token over positions [first, len) of its
// sequence.
struct AttentionItem {
  const float* q;  // the token's query: head h at q + h * head_dim
  float* out;      // likewise
  int64_t h0, h1;
  int64_t group;  // query heads per KV head
  int64_t head_dim;
  float scale;
  int64_t first, len;
  const int32_t* block_table;
  // Block b's key rows of this layer start at keys + b * block_stride, its
  // value rows at values + b * block_stride; a block holds block_size rows
  // of row_bytes per KV head.
  const uint8_t* keys;
  const uint8_t* values;
  int64_t block_stride, block_size, row_bytes;
  // (No member functions: the AVX-512 file must not emit inline functions
  // with external linkage; each kernel file has its own KeyRows/ValueRows.)
};

// How a cached row is stored (KvElement, kv_cache.h).
enum class RowFormat { kF32, kF16, kQ8_0 };

// scores[p] = exp(scores[p] - max) for p < len; returns their sum. Defined
// in paged_attention.cc for the AVX2 kernel (the AVX-512 kernels have their
// own, 16 lanes wide).
float ExpMinusMaxInPlace(float* scores, int64_t len, float max);

namespace avx512 {
// The item with 16-lane registers; false (nothing written) for head sizes
// other than 16, 32, 64 and 128. Call only on CPUs with AVX-512
// (small_gemm_isa.h).
bool AttendHeads(const AttentionItem& item, RowFormat format, float* scores,
                 int64_t max_context);

// `queries` (<= kMaxTileQueries) consecutive tokens of one sequence: `first`
// is the first token's item; token i's query, output and length are
// first.q + i * q_stride, first.out + i * out_stride and first.len + i, and
// with window > 0 it sees positions from len - window on. Every token's
// result has the bits AttendHeads gives it alone. scores: queries * (h1 -
// h0) rows of max_context floats. False (nothing written) where
// AttendHeads would be, for blocks of other than 16 rows or for more than
// kMaxTileQueries tokens.
bool AttendTile(const AttentionItem& first, int64_t queries, int64_t q_stride,
                int64_t out_stride, int64_t window, RowFormat format,
                float* scores, int64_t max_context);
}  // namespace avx512

}  // namespace lumen::engine::kernels
