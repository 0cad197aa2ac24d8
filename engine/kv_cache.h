#pragma once
// KvCache: the paged key/value arena. One mapping at start holds
// `num_blocks` blocks of `block_size` token slots for every layer; a sequence
// owns a table of block ids and its token at position p lives in block
// table[p / block_size], slot p % block_size. Blocks are referenced, never
// copied, so sequences can share prefix blocks. Engine thread only.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

namespace lumen::engine {

struct KvCacheShape {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;
  int64_t num_blocks = 0;
};

class KvCache {
 public:
  // ResourceExhausted when the arena cannot be allocated.
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(
      const KvCacheShape& shape);
  // How many blocks fit in `bytes` for a model of this shape.
  static int64_t BlocksForBytes(const KvCacheShape& shape, int64_t bytes);

  const KvCacheShape& shape() const { return shape_; }
  int64_t bytes_per_block() const {
    return block_floats_ * 2 * shape_.n_layers * 4;
  }
  int64_t total_bytes() const { return bytes_per_block() * shape_.num_blocks; }

  // Keys of one block and layer: [n_kv_heads, block_size, head_dim].
  float* Keys(int64_t block, int64_t layer) {
    return arena_.get() +
           ((block * shape_.n_layers + layer) * 2) * block_floats_;
  }
  float* Values(int64_t block, int64_t layer) {
    return Keys(block, layer) + block_floats_;
  }

 private:
  struct ArenaUnmap {
    size_t bytes;
    void operator()(float* p) const;
  };
  using Arena = std::unique_ptr<float, ArenaUnmap>;
  KvCache(const KvCacheShape& shape, Arena arena)
      : shape_(shape),
        block_floats_(shape.n_kv_heads * shape.block_size * shape.head_dim),
        arena_(std::move(arena)) {}
  KvCacheShape shape_;
  int64_t block_floats_;  // floats of K (or V) per block and layer
  Arena arena_;           // anonymous mapping: zero until written
};

}  // namespace lumen::engine
