#pragma once
// Constrained decoding, the face the engine sees. A request's constraint
// (JSON Schema, any JSON object, a regular expression or a GBNF grammar) is
// compiled once (ConstraintCache) into a CompiledConstraint; each request
// then carries a ConstraintState that fills the allowed-token mask before
// sampling and advances with every sampled token. The sampler sees only the
// mask (Sampler::SampleMasked).
//
// Typical use (engine thread, per step, for each constrained sequence):
//   state.FillAllowedMask(mask);            // [vocab words]
//   token = sampler.SampleMasked(logits, mask, &sampler_state);
//   state.AcceptToken(token);               // EOS allowed iff IsAccepting()
//   if (state.IsComplete()) finish("stop");  // nothing else can follow

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/constrained/grammar.h"
#include "engine/constrained/token_masker.h"
#include "engine/constrained/token_trie.h"

namespace lumen::engine::constrained {

enum class ConstraintKind {
  kJsonSchema,  // text: a JSON Schema document
  kJsonObject,  // any JSON object; text unused
  kRegex,       // text: a regular expression the whole output must match
  kGrammar,     // text: a GBNF grammar (llama.cpp's format), start rule root
};

struct ConstraintSpec {
  ConstraintKind kind = ConstraintKind::kGrammar;
  std::string text;
};

// "json_schema", "json_object", "regex", "grammar".
const char* ConstraintKindName(ConstraintKind kind);

// The GBNF grammar a spec stands for (the grammar itself for kGrammar).
// InvalidArgument for an invalid or unsupported schema or regex.
absl::StatusOr<std::string> ConstraintToGbnf(const ConstraintSpec& spec);

// The checked byte-level grammar of a spec. InvalidArgument naming the
// problem (with line/column for grammars, the keyword and JSON pointer for
// schemas, the column for regexes).
absl::StatusOr<Grammar> CompileConstraintGrammar(const ConstraintSpec& spec);

class ConstraintState;

// A constraint compiled against one vocabulary. Immutable face; shared by
// every request that uses the same constraint text; any thread.
class CompiledConstraint {
 public:
  // Compiles the spec and computes the mask of its start state.
  static absl::StatusOr<std::shared_ptr<const CompiledConstraint>> Compile(
      const ConstraintSpec& spec, std::shared_ptr<const TokenTrie> trie,
      const MaskerLimits& limits = {});

  // A state at the start of the constraint, for one request. Any thread.
  // ResourceExhausted if a fresh matcher cannot even start.
  absl::StatusOr<ConstraintState> NewState() const;

  const ConstraintSpec& spec() const { return spec_; }
  const TokenTrie& trie() const { return *trie_; }
  // Statistics of the matcher new requests get (for benchmarks, metrics).
  MaskerStats stats() const;

 private:
  CompiledConstraint(ConstraintSpec spec, std::shared_ptr<const Grammar> g,
                     std::shared_ptr<const TokenTrie> trie,
                     std::shared_ptr<TokenMasker> masker,
                     const MaskerLimits& limits);

  const ConstraintSpec spec_;
  const std::shared_ptr<const Grammar> grammar_;
  const std::shared_ptr<const TokenTrie> trie_;
  const MaskerLimits limits_;
  mutable absl::Mutex mu_;
  // Replaced by a fresh one when it outgrows its budget; requests keep the
  // one they started with.
  mutable std::shared_ptr<TokenMasker> masker_ ABSL_GUARDED_BY(mu_);
};

// One request's position in its constraint. Cheap to copy (a shared
// pointer and a few words). Engine thread (or whichever thread owns the
// request); distinct states may be used from different threads.
class ConstraintState {
 public:
  // Words `bits` must have at least: (vocabulary size + 31) / 32.
  int32_t mask_words() const { return masker_->trie().mask_words(); }

  // Sets bit t (bit t % 32 of word t / 32) for every token the constraint
  // allows next, clears the rest (words past the vocabulary too). No
  // allocation once the state has been seen. FailedPrecondition after an
  // end-of-generation token, ResourceExhausted when the matcher outgrows its
  // limits, InvalidArgument when `bits` is too small.
  absl::Status FillAllowedMask(std::span<uint32_t> bits);

  // Advances by one sampled token. An end-of-generation token is accepted
  // only when IsAccepting(). InvalidArgument when the constraint refuses
  // the token (the mask would not have allowed it).
  absl::Status AcceptToken(int32_t token);
  // Advances by output text that was generated before the constraint took
  // over (a lazy constraint's trigger and what followed it in its token).
  // InvalidArgument when the constraint refuses it; the state is unchanged.
  absl::Status AcceptText(absl::string_view bytes);

  // The output so far is a complete match (EOS is allowed).
  bool IsAccepting() const { return accepting_; }
  // Accepting and nothing else may follow: only end-of-generation tokens are
  // allowed, so the request can finish now.
  bool IsComplete() const { return accepting_ && !can_continue_; }
  // An end-of-generation token was accepted.
  bool IsEnded() const { return ended_; }

 private:
  friend class CompiledConstraint;
  ConstraintState(std::shared_ptr<TokenMasker> masker, int32_t state,
                  bool accepting, bool can_continue)
      : masker_(std::move(masker)),
        state_(state),
        accepting_(accepting),
        can_continue_(can_continue) {}

  // Moves to `step`'s state; InvalidArgument(refusal()) when it is dead.
  absl::Status Take(absl::StatusOr<TokenMasker::Step> step,
                    absl::FunctionRef<std::string()> refusal);

  std::shared_ptr<TokenMasker> masker_;
  int32_t state_;
  bool accepting_;
  bool can_continue_;
  bool ended_ = false;
};

}  // namespace lumen::engine::constrained
