#include "engine/scheduler/block_pool.h"

#include <openssl/sha.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace lumen::engine {

BlockHash PrefixRoot(absl::string_view salt) {
  const std::string input = absl::StrCat("lumen prefix cache v1", salt);
  BlockHash root;
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         root.digest.data());
  return root;
}

BlockHash HashBlock(const BlockHash& parent, std::span<const int32_t> tokens) {
  // The parent digest, then the token ids as little-endian 32-bit words.
  constexpr size_t kMaxTokens = 256;
  LUMEN_CHECK(tokens.size() <= kMaxTokens, "KV block size above 256");
  uint8_t bytes[32 + 4 * kMaxTokens];
  std::memcpy(bytes, parent.digest.data(), 32);
  size_t n = 32;
  for (int32_t t : tokens) {
    const uint32_t u = static_cast<uint32_t>(t);
    for (int i = 0; i < 4; ++i) bytes[n++] = static_cast<uint8_t>(u >> (8 * i));
  }
  BlockHash h;
  SHA256(bytes, n, h.digest.data());
  return h;
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
