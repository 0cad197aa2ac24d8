#pragma once
// GrammarAutomaton: runs a Grammar over bytes as a pushdown automaton, the
// way llama.cpp's grammar stacks do, but with every stack and every set of
// stacks (a configuration) interned: a configuration is a small integer
// state, and transitions (state, byte) -> state are memoized. The automaton
// thus becomes a DFA built lazily, only where matching actually goes, and a
// state id is all a request needs to carry. Right recursion (repetitions)
// is a tail call, so a loop such as the characters of a string comes back
// to the same state instead of growing the stack.
//
// Not thread-safe: TokenMasker serializes access. States only grow; limits
// bound the memory a pathological grammar can take.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/constrained/grammar.h"

namespace lumen::engine::constrained {

struct AutomatonLimits {
  int32_t max_states = 1 << 16;            // 1 KiB of transitions each
  int32_t max_stacks_per_state = 1 << 12;  // ambiguity
  int32_t max_stack_nodes = 1 << 23;
};

class GrammarAutomaton {
 public:
  static constexpr int32_t kDead = -1;

  // Builds the start state. ResourceExhausted when a limit is exceeded.
  static absl::StatusOr<std::unique_ptr<GrammarAutomaton>> Create(
      std::shared_ptr<const Grammar> grammar, const AutomatonLimits& limits);

  int32_t initial_state() const { return initial_; }

  // The state after `byte`, or kDead when the grammar refuses it. When a
  // limit is exceeded, returns kDead and status() turns not-OK for good.
  int32_t Next(int32_t state, uint8_t byte) {
    const int32_t next =
        transition_blocks_[state >> kStatesPerBlockLog2]
                          [((state & (kStatesPerBlock - 1)) << 8) | byte];
    return next != kUnknown ? next : ComputeNext(state, byte);
  }
  // The state after all of `bytes` (kDead if any is refused).
  int32_t NextAll(int32_t state, std::span<const uint8_t> bytes) {
    for (uint8_t b : bytes) {
      if (state == kDead) break;
      state = Next(state, b);
    }
    return state;
  }

  // The input so far is a complete match.
  bool IsAccepting(int32_t state) const { return accepting_[state]; }
  // Some byte may still follow.
  bool CanContinue(int32_t state) const { return !configs_[state].empty(); }

  const absl::Status& status() const { return status_; }
  int32_t num_states() const { return static_cast<int32_t>(configs_.size()); }
  size_t MemoryBytes() const;

 private:
  static constexpr int32_t kUnknown = -2;
  static constexpr int32_t kEmptyStack = -1;  // the whole grammar matched

  struct StackNode {
    int32_t pos;     // next element to match (a kBytes once expanded)
    int32_t parent;  // continuation after this rule, or kEmptyStack
  };

  GrammarAutomaton(std::shared_ptr<const Grammar> grammar,
                   const AutomatonLimits& limits);
  int32_t ComputeNext(int32_t state, uint8_t byte);
  // Interned stack (pos, parent); an alternative's end returns to parent.
  int32_t Push(int32_t pos, int32_t parent);
  // Adds the byte-expecting stacks reachable from `stack` to scratch_.
  void Expand(int32_t stack);
  // Interns the configuration in scratch_ (sorted here).
  int32_t InternScratch();
  void Fail(absl::Status status);

  std::shared_ptr<const Grammar> grammar_;
  AutomatonLimits limits_;
  absl::Status status_;

  std::vector<StackNode> nodes_;                     // [num_nodes]
  absl::flat_hash_map<uint64_t, int32_t> node_ids_;  // (pos, parent) -> id
  std::vector<uint32_t> visit_epoch_;                // [num_nodes]
  uint32_t epoch_ = 0;

  std::vector<std::vector<int32_t>> configs_;  // [num_states] stacks
  std::vector<uint8_t> accepting_;             // [num_states]
  // Transitions in blocks of [kStatesPerBlock, 256]: growing never moves
  // what exists (no copy, no latency spike in the middle of a mask walk).
  static constexpr int32_t kStatesPerBlockLog2 = 6;
  static constexpr int32_t kStatesPerBlock = 1 << kStatesPerBlockLog2;
  std::vector<std::unique_ptr<int32_t[]>> transition_blocks_;
  absl::flat_hash_map<std::vector<int32_t>, int32_t> state_ids_;
  int32_t initial_ = kDead;

  // Scratch for ComputeNext.
  std::vector<int32_t> scratch_;
  std::vector<int32_t> work_;
  bool scratch_accepting_ = false;
};

}  // namespace lumen::engine::constrained
