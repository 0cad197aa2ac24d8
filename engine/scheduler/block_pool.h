#pragma once
// BlockPool: every KV block of the cache, allocated up front, with reference
// counts, an eviction-ordered free list and a prefix-cache map from block
// hash to block (vLLM v1's block_pool). A full block's hash covers its
// tokens and everything before them, so equal hashes mean equal prefixes.
// Free blocks keep their hash until reused: a later request with the same
// prefix takes them back. Engine thread only.

#include <array>
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace lumen::engine {

// SHA-256 of a block's tokens chained to its parent's hash. A collision
// would serve one prompt's KV to another (vLLM moved to SHA-256 after
// CVE-2025-25183 for this reason), so the hash is collision resistant.
struct BlockHash {
  std::array<uint8_t, 32> digest{};
  bool operator==(const BlockHash&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const BlockHash& b) {
    return H::combine_contiguous(std::move(h), b.digest.data(),
                                 b.digest.size());
  }
};

// The parent of a sequence's first block: requests whose salts differ
// (tenants, adapters) never share a cached block.
BlockHash PrefixRoot(absl::string_view salt);
// Hash of a full block of tokens after the block hashed `parent`.
BlockHash HashBlock(const BlockHash& parent, std::span<const int32_t> tokens);

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t num_free_blocks() const { return static_cast<int32_t>(free_.size()); }
  // Free blocks that still hold a reusable prefix.
  int32_t num_cached_free_blocks() const { return cached_free_; }

  // Takes `n` blocks (least recently freed first, dropping their cached
  // hashes), each with reference count 1. nullopt when fewer are free.
  std::optional<std::vector<int32_t>> Allocate(int32_t n);
  // Drops one reference from each block; blocks reaching zero go to the tail
  // of the free list (evicted last), keeping their hash.
  void Free(std::span<const int32_t> blocks);

  // The block holding this prefix hash, or nullopt.
  std::optional<int32_t> Lookup(BlockHash hash) const;
  // Adds a reference to a cached block (taking it off the free list).
  void Acquire(int32_t block);
  // Records that `block` (full, referenced) holds `hash`. The first block
  // registered for a hash wins.
  void Register(int32_t block, BlockHash hash);

  int32_t ref_count(int32_t block) const { return blocks_[block].refs; }

 private:
  struct Block {
    int32_t refs = 0;
    std::optional<BlockHash> hash;
    std::list<int32_t>::iterator free_it;  // valid when refs == 0
  };
  std::vector<Block> blocks_;
  std::list<int32_t> free_;  // front: evicted first
  absl::flat_hash_map<BlockHash, int32_t> cached_;
  int32_t cached_free_ = 0;
};

}  // namespace lumen::engine
