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
// attention reads per step (the larger share of a many-sequence decode step)
// and q8_0 nearly halves them again; values are rounded once, when written.
// A q8_0 row (one head's keys or values at one position) is int8 codes in
// blocks of 32 (or one block, for heads under 32 wide), then each block's
// fp16 scale d: value = d * code, d = max |value| / 127, as ggml's Q8_0.
enum class KvElement { kF32, kF16, kQ8_0 };

// "f32" / "f16" / "q8_0"; ParseKvElement is InvalidArgument on anything else.
const char* KvElementName(KvElement e);
absl::StatusOr<KvElement> ParseKvElement(std::string_view name);

// Values per q8_0 scale for this head size.
inline int64_t KvQ8BlockLength(int64_t head_dim) {
  return head_dim < 32 ? head_dim : 32;
}
// Bytes of one row of head_dim values.
int64_t KvRowBytes(KvElement e, int64_t head_dim);
// InvalidArgument, naming the head size, when e cannot store its rows
// (q8_0 needs a head size under 32 or a multiple of 32).
absl::Status CheckKvElement(KvElement e, int64_t head_dim);
// Writes x[0..head_dim) as one row; reads one back as fp32.
void StoreKvRow(KvElement e, const float* x, int64_t head_dim, uint8_t* row);
void LoadKvRow(KvElement e, const uint8_t* row, int64_t head_dim, float* x);
// Block `index` (KvQ8BlockLength(head_dim) values) of a q8_0 row as fp32.
void LoadKvQ8Block(const uint8_t* row, int64_t head_dim, int64_t index,
                   float* x);

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
  // when the kernel cannot populate (Linux < 5.14), or refused an earlier
  // PopulateSome (it is not asked again).
  absl::Status Prefault();
  // Prefault in installments: backs the next max_bytes (rounded up to whole
  // 2 MiB pages) of the arena not yet backed, from its start, where the
  // block pool hands out blocks first. The engine calls it while it has
  // nothing to run, so that requests never pay the first writes: without
  // it, the first 64 requests of `lumen bench --concurrency 16` after a
  // start spent 7% of lumend's samples zeroing fresh pages for StoreKvRow.
  // False once the whole arena is backed, or when the kernel refuses (the
  // rest then faults in on first write).
  bool PopulateSome(int64_t max_bytes);
  int64_t populated_bytes() const { return populated_bytes_; }

  const KvCacheShape& shape() const { return shape_; }
  KvElement element() const { return shape_.element; }
  // Bytes of one head's keys (or values) at one position.
  int64_t row_bytes() const { return row_bytes_; }
  int64_t bytes_per_block() const { return block_bytes_ * 2 * shape_.n_layers; }
  int64_t total_bytes() const { return bytes_per_block() * shape_.num_blocks; }

  // Keys of one block and layer: [n_kv_heads, block_size] rows of
  // row_bytes(); T is float for kF32, uint16_t (fp16 bits) for kF16 and
  // uint8_t for any element.
  template <class T = float>
  T* Keys(int64_t block, int64_t layer) {
    assert(IsElementType<T>());
    return reinterpret_cast<T*>(
        arena_.get() + ((block * shape_.n_layers + layer) * 2) * block_bytes_);
  }
  template <class T = float>
  T* Values(int64_t block, int64_t layer) {
    assert(IsElementType<T>());
    return reinterpret_cast<T*>(arena_.get() +
                                ((block * shape_.n_layers + layer) * 2 + 1) *
                                    block_bytes_);
  }
  // Row `slot` of head `kv_head` in a block's keys or values.
  uint8_t* Row(uint8_t* keys_or_values, int64_t kv_head, int64_t slot) const {
    return keys_or_values + (kv_head * shape_.block_size + slot) * row_bytes_;
  }

 private:
  struct ArenaUnmap {
    size_t bytes;
    void operator()(uint8_t* p) const;
  };
  using Arena = std::unique_ptr<uint8_t, ArenaUnmap>;
  KvCache(const KvCacheShape& shape, Arena arena)
      : shape_(shape),
        row_bytes_(KvRowBytes(shape.element, shape.head_dim)),
        block_bytes_(shape.n_kv_heads * shape.block_size * row_bytes_),
        arena_(std::move(arena)) {}
  template <class T>
  bool IsElementType() const {
    if (sizeof(T) == 1) return true;
    return sizeof(T) == (shape_.element == KvElement::kF32 ? 4u : 2u) &&
           shape_.element != KvElement::kQ8_0;
  }
  KvCacheShape shape_;
  int64_t row_bytes_;
  int64_t block_bytes_;          // bytes of K (or V) per block and layer
  Arena arena_;                  // anonymous mapping: zero until written
  int64_t populated_bytes_ = 0;  // [0, this) backed by PopulateSome
  bool populate_refused_ = false;
  int populate_errno_ = 0;
};

}  // namespace lumen::engine
