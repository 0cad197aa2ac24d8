#include "engine/constrained/grammar_automaton.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace lumen::engine::constrained {

GrammarAutomaton::GrammarAutomaton(std::shared_ptr<const Grammar> grammar,
                                   const AutomatonLimits& limits)
    : grammar_(std::move(grammar)), limits_(limits) {}

absl::StatusOr<std::unique_ptr<GrammarAutomaton>> GrammarAutomaton::Create(
    std::shared_ptr<const Grammar> grammar, const AutomatonLimits& limits) {
  std::unique_ptr<GrammarAutomaton> a(
      new GrammarAutomaton(std::move(grammar), limits));
  a->scratch_.clear();
  a->scratch_accepting_ = false;
  ++a->epoch_;
  const Rule& root = a->grammar_->rule(a->grammar_->root());
  for (int32_t start : root.alternatives) {
    a->Expand(a->Push(start, kEmptyStack));
  }
  a->initial_ = a->InternScratch();
  if (!a->status_.ok()) return a->status_;
  return a;
}

void GrammarAutomaton::Fail(absl::Status status) {
  if (status_.ok()) status_ = std::move(status);
}

int32_t GrammarAutomaton::Push(int32_t pos, int32_t parent) {
  if (grammar_->element(pos).kind == ElementKind::kEnd) return parent;
  const uint64_t key = (uint64_t{static_cast<uint32_t>(pos)} << 32) |
                       static_cast<uint32_t>(parent);
  auto [it, inserted] =
      node_ids_.try_emplace(key, static_cast<int32_t>(nodes_.size()));
  if (inserted) {
    if (static_cast<int32_t>(nodes_.size()) >= limits_.max_stack_nodes) {
      Fail(absl::ResourceExhaustedError(
          absl::StrCat("constraint matcher exceeded ", limits_.max_stack_nodes,
                       " stack entries; simplify the grammar")));
    }
    nodes_.push_back({pos, parent});
    visit_epoch_.push_back(0);
  }
  return it->second;
}

void GrammarAutomaton::Expand(int32_t stack) {
  work_.push_back(stack);
  while (!work_.empty()) {
    const int32_t s = work_.back();
    work_.pop_back();
    if (s == kEmptyStack) {
      scratch_accepting_ = true;
      continue;
    }
    if (visit_epoch_[s] == epoch_) continue;
    visit_epoch_[s] = epoch_;
    const StackNode node = nodes_[s];
    const Element& e = grammar_->element(node.pos);
    if (e.kind == ElementKind::kBytes) {
      scratch_.push_back(s);
      continue;
    }
    // A rule reference: its continuation is the next element (an
    // alternative's end returns straight to the parent: a tail call).
    const int32_t continuation = Push(node.pos + 1, node.parent);
    for (int32_t start : grammar_->rule(e.index).alternatives) {
      work_.push_back(Push(start, continuation));
    }
    if (!status_.ok()) {
      work_.clear();
      return;
    }
  }
}

int32_t GrammarAutomaton::InternScratch() {
  std::sort(scratch_.begin(), scratch_.end());
  scratch_.erase(std::unique(scratch_.begin(), scratch_.end()), scratch_.end());
  if (static_cast<int32_t>(scratch_.size()) > limits_.max_stacks_per_state) {
    Fail(absl::ResourceExhaustedError(
        absl::StrCat("constraint grammar is too ambiguous (more than ",
                     limits_.max_stacks_per_state, " parses alive at once)")));
  }
  if (!status_.ok()) return kDead;
  if (scratch_.empty() && !scratch_accepting_) return kDead;
  // The key carries the accepting flag as a leading kEmptyStack.
  if (scratch_accepting_) scratch_.insert(scratch_.begin(), kEmptyStack);
  auto it = state_ids_.find(scratch_);
  if (it != state_ids_.end()) return it->second;
  if (num_states() >= limits_.max_states) {
    Fail(absl::ResourceExhaustedError(
        absl::StrCat("constraint matcher exceeded ", limits_.max_states,
                     " states; simplify the grammar")));
    return kDead;
  }
  const int32_t id = num_states();
  state_ids_.emplace(scratch_, id);
  if (scratch_accepting_) scratch_.erase(scratch_.begin());
  configs_.push_back(scratch_);
  accepting_.push_back(scratch_accepting_ ? 1 : 0);
  if (id % kStatesPerBlock == 0) {
    transition_blocks_.push_back(
        std::make_unique<int32_t[]>(size_t{kStatesPerBlock} * 256));
    std::fill_n(transition_blocks_.back().get(), size_t{kStatesPerBlock} * 256,
                kUnknown);
  }
  return id;
}

int32_t GrammarAutomaton::ComputeNext(int32_t state, uint8_t byte) {
  if (!status_.ok()) return kDead;
  scratch_.clear();
  scratch_accepting_ = false;
  ++epoch_;
  // configs_ may grow (and move) while expanding: index, do not iterate.
  for (size_t i = 0; i < configs_[state].size(); ++i) {
    const StackNode node = nodes_[configs_[state][i]];
    const Element& e = grammar_->element(node.pos);
    if (!grammar_->byte_set(e.index).Has(byte)) continue;
    Expand(Push(node.pos + 1, node.parent));
  }
  const int32_t next = InternScratch();
  if (!status_.ok()) return kDead;
  transition_blocks_[state >> kStatesPerBlockLog2]
                    [((state & (kStatesPerBlock - 1)) << 8) | byte] = next;
  return next;
}

size_t GrammarAutomaton::MemoryBytes() const {
  size_t bytes =
      nodes_.capacity() * (sizeof(StackNode) + sizeof(uint32_t)) +
      node_ids_.capacity() * (sizeof(uint64_t) + sizeof(int32_t)) +
      transition_blocks_.size() * kStatesPerBlock * 256 * sizeof(int32_t);
  for (size_t s = 0; s < configs_.size(); ++s) {
    // Stored twice: in configs_ and as the state_ids_ key.
    bytes += 2 * (configs_[s].capacity() * sizeof(int32_t) + 32);
  }
  return bytes;
}

}  // namespace lumen::engine::constrained
