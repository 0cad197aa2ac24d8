#pragma once
// TokenMasker: the allowed-token masks of one grammar over one vocabulary.
// A state's mask comes from walking the token trie against the automaton
// (a refused byte skips the whole subtree) and is cached per state, as
// xgrammar and llama.cpp's grammar sampler cache theirs: the first visit of
// a state costs a walk, later visits a copy. End-of-generation tokens are
// allowed exactly in accepting states.
//
// Thread-safe (one mutex): compilation threads compute the start state's
// mask, the engine thread the rest. Memory only grows; OverBudget() tells
// the owner to start a fresh masker for new requests.

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/constrained/grammar.h"
#include "engine/constrained/grammar_automaton.h"
#include "engine/constrained/token_trie.h"

namespace lumen::engine::constrained {

struct MaskerLimits {
  AutomatonLimits automaton;
  // Masks beyond this many bytes are recomputed instead of cached.
  size_t max_mask_cache_bytes = size_t{256} << 20;
  // OverBudget() past this much memory (automaton + masks).
  size_t budget_bytes = size_t{512} << 20;
};

struct MaskerStats {
  int32_t num_states = 0;
  int32_t cached_masks = 0;
  int64_t mask_walks = 0;  // masks computed by a trie walk
  int64_t mask_hits = 0;   // masks copied from the cache
  size_t memory_bytes = 0;
};

class TokenMasker {
 public:
  static constexpr int32_t kDead = GrammarAutomaton::kDead;

  // ResourceExhausted when the start state already exceeds a limit.
  static absl::StatusOr<std::shared_ptr<TokenMasker>> Create(
      std::shared_ptr<const Grammar> grammar,
      std::shared_ptr<const TokenTrie> trie, const MaskerLimits& limits);

  int32_t initial_state() const { return initial_state_; }
  const TokenTrie& trie() const { return *trie_; }

  // Sets bit t of `bits` ([>= trie().mask_words()]; words past the
  // vocabulary are zeroed) when token t may follow `state`.
  // ResourceExhausted when the automaton outgrows its limits.
  absl::Status FillMask(int32_t state, std::span<uint32_t> bits);

  struct Step {
    int32_t state;      // kDead: the token is refused
    bool accepting;     // the text so far is a complete match
    bool can_continue;  // more bytes may follow
  };
  // The state after the bytes of `token` (not an end-of-generation token).
  absl::StatusOr<Step> Advance(int32_t state, int32_t token);
  // The state after `bytes` (text that did not come token by token: the
  // output a lazy constraint takes over, engine/constrained/constraint.h).
  absl::StatusOr<Step> AdvanceBytes(int32_t state, absl::string_view bytes);
  // The start state (fixed at creation; no lock).
  Step initial_step() const { return initial_step_; }

  MaskerStats stats();
  // Memory beyond the budget, or a limit hit: the owner should give new
  // requests a fresh masker. Lock-free.
  bool OverBudget() const {
    return memory_bytes_.load(std::memory_order_relaxed) >
               limits_.budget_bytes ||
           failed_.load(std::memory_order_relaxed);
  }

 private:
  TokenMasker(std::shared_ptr<const Grammar> grammar,
              std::shared_ptr<const TokenTrie> trie,
              std::unique_ptr<GrammarAutomaton> automaton,
              const MaskerLimits& limits);
  void WalkTrie(int32_t state, uint32_t* bits)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t MemoryBytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Updates the lock-free mirrors after the automaton or cache changed.
  void Publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<const Grammar> grammar_;
  const std::shared_ptr<const TokenTrie> trie_;
  const MaskerLimits limits_;
  int32_t initial_state_ = kDead;
  Step initial_step_{kDead, false, false};
  // Mirrors of the guarded state for lock-free OverBudget().
  std::atomic<size_t> memory_bytes_{0};
  std::atomic<bool> failed_{false};

  absl::Mutex mu_;
  std::unique_ptr<GrammarAutomaton> automaton_ ABSL_GUARDED_BY(mu_);
  // [num_states] -> [mask_words] or null when not cached.
  std::vector<std::unique_ptr<uint32_t[]>> masks_ ABSL_GUARDED_BY(mu_);
  size_t mask_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int32_t> walk_states_ ABSL_GUARDED_BY(mu_);  // [max_depth + 1]
  int64_t mask_walks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t mask_hits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lumen::engine::constrained
