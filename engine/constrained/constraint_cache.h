#pragma once
// ConstraintCache: compiled constraints of one vocabulary (one per loaded
// model), keyed by kind and text, so each distinct constraint compiles once
// and requests repeating it (the usual case: one schema, many requests)
// share its compiled grammar and its per-state token masks. Least recently
// used entries beyond the capacity are dropped (requests holding them keep
// them alive). Thread-safe: RPC/executor threads call Get while the engine
// thread uses what it returned. Compilation runs outside the lock.

#include <cstddef>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/constrained/constraint.h"
#include "engine/constrained/token_trie.h"
#include "engine/tokenizer/tokenizer.h"

namespace lumen::engine::constrained {

struct ConstraintCacheOptions {
  size_t capacity = 128;  // compiled constraints kept
  MaskerLimits limits;
};

class ConstraintCache {
 public:
  // Builds the token trie of `tokenizer` (tens of milliseconds for a 100k
  // vocabulary); the cache does not keep a reference to the tokenizer.
  explicit ConstraintCache(const Tokenizer& tokenizer,
                           const ConstraintCacheOptions& options = {});
  ConstraintCache(std::shared_ptr<const TokenTrie> trie,
                  const ConstraintCacheOptions& options = {});

  // The compiled constraint for `spec`, compiling it on a miss (do this
  // before queuing the request: a bad constraint is InvalidArgument naming
  // the problem, see CompileConstraintGrammar). Any thread.
  absl::StatusOr<std::shared_ptr<const CompiledConstraint>> Get(
      const ConstraintSpec& spec);

  const std::shared_ptr<const TokenTrie>& trie() const { return trie_; }
  size_t size() const;
  int64_t hits() const;
  int64_t misses() const;

 private:
  using Entry =
      std::pair<std::string, std::shared_ptr<const CompiledConstraint>>;

  const std::shared_ptr<const TokenTrie> trie_;
  const ConstraintCacheOptions options_;
  mutable absl::Mutex mu_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> index_
      ABSL_GUARDED_BY(mu_);
  int64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lumen::engine::constrained
