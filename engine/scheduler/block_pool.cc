#include "engine/scheduler/block_pool.h"

namespace lumen::engine {

BlockHash HashBlock(BlockHash parent, std::span<const int32_t> tokens,
                    uint64_t salt) {
  // FNV-1a over the parent hash, the salt and the token ids, then a final mix
  // (splitmix64) to spread the bits.
  uint64_t h = 0xcbf29ce484222325ull ^ salt;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  };
  mix(parent);
  for (int32_t t : tokens) mix(static_cast<uint32_t>(t));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h == 0 ? 1 : h;
}

BlockPool::BlockPool(int32_t num_blocks) : blocks_(num_blocks) {
  for (int32_t b = 0; b < num_blocks; ++b) {
    free_.push_back(b);
    blocks_[b].free_it = std::prev(free_.end());
  }
}

std::optional<std::vector<int32_t>> BlockPool::Allocate(int32_t n) {
  if (n > num_free_blocks()) return std::nullopt;
  std::vector<int32_t> out;
  out.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = free_.front();
    free_.pop_front();
    Block& block = blocks_[b];
    if (block.hash) {
      // Evict its prefix: the block is about to hold other tokens.
      auto it = cached_.find(*block.hash);
      if (it != cached_.end() && it->second == b) cached_.erase(it);
      block.hash.reset();
      --cached_free_;
    }
    block.refs = 1;
    out.push_back(b);
  }
  return out;
}

void BlockPool::Free(std::span<const int32_t> blocks) {
  for (int32_t b : blocks) {
    Block& block = blocks_[b];
    if (--block.refs > 0) continue;
    free_.push_back(b);
    block.free_it = std::prev(free_.end());
    if (block.hash) ++cached_free_;
  }
}

std::optional<int32_t> BlockPool::Lookup(BlockHash hash) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  return it->second;
}

void BlockPool::Acquire(int32_t b) {
  Block& block = blocks_[b];
  if (block.refs++ == 0) {
    free_.erase(block.free_it);
    if (block.hash) --cached_free_;
  }
}

void BlockPool::Register(int32_t b, BlockHash hash) {
  Block& block = blocks_[b];
  if (block.hash) return;
  if (cached_.contains(hash)) return;  // an equal prefix is already cached
  block.hash = hash;
  cached_.emplace(hash, b);
}

}  // namespace lumen::engine
