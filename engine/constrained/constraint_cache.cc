#include "engine/constrained/constraint_cache.h"

#include "absl/strings/str_cat.h"

namespace lumen::engine::constrained {

namespace {

std::string Key(const ConstraintSpec& spec) {
  return absl::StrCat(static_cast<int>(spec.kind), ":", spec.text);
}

}  // namespace

ConstraintCache::ConstraintCache(const Tokenizer& tokenizer,
                                 const ConstraintCacheOptions& options)
    : ConstraintCache(TokenTrie::Build(tokenizer), options) {}

ConstraintCache::ConstraintCache(std::shared_ptr<const TokenTrie> trie,
                                 const ConstraintCacheOptions& options)
    : trie_(std::move(trie)), options_(options) {}

absl::StatusOr<std::shared_ptr<const CompiledConstraint>> ConstraintCache::Get(
    const ConstraintSpec& spec) {
  ConstraintSpec normalized = spec;
  if (normalized.kind == ConstraintKind::kJsonObject) normalized.text.clear();
  const std::string key = Key(normalized);
  {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
      return it->second->second;
    }
    ++misses_;
  }
  auto compiled =
      CompiledConstraint::Compile(normalized, trie_, options_.limits);
  if (!compiled.ok()) return compiled.status();
  absl::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second->second;  // compiled meanwhile
  lru_.emplace_front(key, *compiled);
  index_[key] = lru_.begin();
  while (lru_.size() > options_.capacity) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return *compiled;
}

size_t ConstraintCache::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

int64_t ConstraintCache::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

int64_t ConstraintCache::misses() const {
  absl::MutexLock lock(&mu_);
  return misses_;
}

}  // namespace lumen::engine::constrained
