#include "engine/constrained/token_masker.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lumen::engine::constrained {

TokenMasker::TokenMasker(std::shared_ptr<const Grammar> grammar,
                         std::shared_ptr<const TokenTrie> trie,
                         std::unique_ptr<GrammarAutomaton> automaton,
                         const MaskerLimits& limits)
    : grammar_(std::move(grammar)),
      trie_(std::move(trie)),
      limits_(limits),
      initial_state_(automaton->initial_state()),
      automaton_(std::move(automaton)) {
  walk_states_.resize(trie_->max_depth() + 1);
  initial_step_ = {initial_state_, automaton_->IsAccepting(initial_state_),
                   automaton_->CanContinue(initial_state_)};
  memory_bytes_ = automaton_->MemoryBytes();
}

void TokenMasker::Publish() {
  memory_bytes_.store(MemoryBytes(), std::memory_order_relaxed);
  if (!automaton_->status().ok()) {
    failed_.store(true, std::memory_order_relaxed);
  }
}

absl::StatusOr<std::shared_ptr<TokenMasker>> TokenMasker::Create(
    std::shared_ptr<const Grammar> grammar,
    std::shared_ptr<const TokenTrie> trie, const MaskerLimits& limits) {
  auto automaton = GrammarAutomaton::Create(grammar, limits.automaton);
  if (!automaton.ok()) return automaton.status();
  return std::shared_ptr<TokenMasker>(new TokenMasker(
      std::move(grammar), std::move(trie), std::move(*automaton), limits));
}

void TokenMasker::WalkTrie(int32_t state, uint32_t* bits) {
  const int32_t n = trie_->num_nodes();
  const TokenTrie::Node* nodes = trie_->nodes();
  const int32_t* tokens = trie_->tokens();
  GrammarAutomaton& a = *automaton_;
  int32_t* walk = walk_states_.data();  // walk[d]: state after d bytes
  walk[0] = state;
  int32_t i = 1;
  while (i < n) {
    const TokenTrie::Node& node = nodes[i];
    const int32_t next = a.Next(walk[node.depth - 1], node.byte);
    if (next == kDead) {
      i = node.subtree_end;
      continue;
    }
    walk[node.depth] = next;
    for (int32_t k = node.token_begin; k < nodes[i + 1].token_begin; ++k) {
      bits[tokens[k] >> 5] |= uint32_t{1} << (tokens[k] & 31);
    }
    ++i;
  }
  if (a.IsAccepting(state)) {
    for (int32_t t : trie_->end_of_generation()) {
      bits[t >> 5] |= uint32_t{1} << (t & 31);
    }
  }
}

absl::Status TokenMasker::FillMask(int32_t state, std::span<uint32_t> bits) {
  const size_t words = trie_->mask_words();
  if (bits.size() < words) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token mask of ", bits.size(), " words is smaller than ", words,
        " (the vocabulary has ", trie_->vocab_size(), " tokens)"));
  }
  std::fill(bits.begin() + words, bits.end(), 0u);
  absl::MutexLock lock(&mu_);
  if (state < 0 || state >= automaton_->num_states()) {
    return absl::InvalidArgumentError(
        absl::StrCat("constraint state ", state, " does not exist"));
  }
  if (static_cast<size_t>(state) < masks_.size() && masks_[state] != nullptr) {
    std::memcpy(bits.data(), masks_[state].get(), words * sizeof(uint32_t));
    ++mask_hits_;
    return absl::OkStatus();
  }
  std::fill_n(bits.begin(), words, 0u);
  WalkTrie(state, bits.data());
  ++mask_walks_;
  Publish();
  if (!automaton_->status().ok()) return automaton_->status();
  const size_t bytes = words * sizeof(uint32_t);
  if (mask_bytes_ + bytes <= limits_.max_mask_cache_bytes) {
    if (masks_.size() <= static_cast<size_t>(state)) {
      masks_.resize(automaton_->num_states());
    }
    masks_[state] = std::make_unique<uint32_t[]>(words);
    std::memcpy(masks_[state].get(), bits.data(), bytes);
    mask_bytes_ += bytes;
    Publish();
  }
  return absl::OkStatus();
}

absl::StatusOr<TokenMasker::Step> TokenMasker::Advance(int32_t state,
                                                       int32_t token) {
  return AdvanceBytes(state, trie_->TokenBytes(token));
}

absl::StatusOr<TokenMasker::Step> TokenMasker::AdvanceBytes(
    int32_t state, absl::string_view bytes) {
  absl::MutexLock lock(&mu_);
  if (state < 0 || state >= automaton_->num_states()) {
    return absl::InvalidArgumentError(
        absl::StrCat("constraint state ", state, " does not exist"));
  }
  if (bytes.empty()) return Step{kDead, false, false};
  const int32_t states_before = automaton_->num_states();
  const int32_t next = automaton_->NextAll(
      state,
      std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  if (automaton_->num_states() != states_before || !automaton_->status().ok()) {
    Publish();
  }
  if (!automaton_->status().ok()) return automaton_->status();
  if (next == kDead) return Step{kDead, false, false};
  return Step{next, automaton_->IsAccepting(next),
              automaton_->CanContinue(next)};
}

size_t TokenMasker::MemoryBytes() const {
  return automaton_->MemoryBytes() + mask_bytes_ +
         masks_.capacity() * sizeof(masks_[0]);
}

MaskerStats TokenMasker::stats() {
  absl::MutexLock lock(&mu_);
  MaskerStats s;
  s.num_states = automaton_->num_states();
  for (const auto& m : masks_) s.cached_masks += m != nullptr;
  s.mask_walks = mask_walks_;
  s.mask_hits = mask_hits_;
  s.memory_bytes = MemoryBytes();
  return s;
}

}  // namespace lumen::engine::constrained
