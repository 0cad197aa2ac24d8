#pragma once
// KvCache: the paged key/value arena. One mapping at start holds
// `num_blocks` blocks of `block_size` token slots for every layer; a sequence
// owns a table of block ids and its token at position p lives in block
// table[p / block_size], slot p % block_size. Blocks are referenced, never
// copied, so sequences can share prefix blocks. Engine thread only.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lumen::engine {

// What a cached key or value element is stored as. f16 halves the bytes
// attention reads per step (the larger share of a many-sequence decode step);
// values are rounded to nearest once, when written.
enum class KvElement { kF32, kF16 };

// "f32" / "f16"; ParseKvElement is InvalidArgument on anything else.
const char* KvElementName(KvElement e);
absl::StatusOr<KvElement> ParseKvElement(std::string_view name);

struct KvCacheShape {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;
  int64_t num_blocks = 0;
  KvElement element = KvElement::kF32;
};

class KvCache {
 public:
  // ResourceExhausted when the arena cannot be allocated.
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(
      const KvCacheShape& shape);
  // How many blocks fit in `bytes` for a model of this shape.
  static int64_t BlocksForBytes(const KvCacheShape& shape, int64_t bytes);

  // Backs the whole arena with (zeroed) memory now rather than at each
  // page's first write. Benchmarks call it before timing steady-state
  // steps: on a fresh arena, the first writes into new blocks page-faulted
  // for 2 ms of a 13 ms 16-sequence decode step (more on a VM whose host
  // backs guest memory lazily). The contents are unchanged; Unavailable
  // when the kernel cannot populate (Linux < 5.14).
  absl::Status Prefault();

  const KvCacheShape& shape() const { return shape_; }
  KvElement element() const { return shape_.element; }
  static int64_t ElementBytes(KvElement e) {
    return e == KvElement::kF16 ? 2 : 4;
  }
  int64_t bytes_per_block() const { return block_bytes_ * 2 * shape_.n_layers; }
  int64_t total_bytes() const { return bytes_per_block() * shape_.num_blocks; }

  // Keys of one block and layer: [n_kv_heads, block_size, head_dim] elements
  // of T, which is float for kF32 and uint16_t (fp16 bits) for kF16.
  template <class T = float>
  T* Keys(int64_t block, int64_t layer) {
    assert(sizeof(T) == static_cast<size_t>(ElementBytes(element())));
    return reinterpret_cast<T*>(
        arena_.get() + ((block * shape_.n_layers + layer) * 2) * block_bytes_);
  }
  template <class T = float>
  T* Values(int64_t block, int64_t layer) {
    assert(sizeof(T) == static_cast<size_t>(ElementBytes(element())));
    return reinterpret_cast<T*>(arena_.get() +
                                ((block * shape_.n_layers + layer) * 2 + 1) *
                                    block_bytes_);
  }

 private:
  struct ArenaUnmap {
    size_t bytes;
    void operator()(uint8_t* p) const;
  };
  using Arena = std::unique_ptr<uint8_t, ArenaUnmap>;
  KvCache(const KvCacheShape& shape, Arena arena)
      : shape_(shape),
        block_bytes_(shape.n_kv_heads * shape.block_size * shape.head_dim *
                     ElementBytes(shape.element)),
        arena_(std::move(arena)) {}
  KvCacheShape shape_;
  int64_t block_bytes_;  // bytes of K (or V) per block and layer
  Arena arena_;          // anonymous mapping: zero until written
};

}  // namespace lumen::engine
