#include "engine/constrained/constraint.h"

#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "engine/constrained/gbnf_parser.h"
#include "engine/constrained/json_schema_to_gbnf.h"
#include "engine/constrained/regex_to_gbnf.h"

namespace lumen::engine::constrained {

const char* ConstraintKindName(ConstraintKind kind) {
  switch (kind) {
    case ConstraintKind::kJsonSchema:
      return "json_schema";
    case ConstraintKind::kJsonObject:
      return "json_object";
    case ConstraintKind::kRegex:
      return "regex";
    case ConstraintKind::kGrammar:
      return "grammar";
  }
  return "unknown";
}

absl::StatusOr<std::string> ConstraintToGbnf(const ConstraintSpec& spec) {
  switch (spec.kind) {
    case ConstraintKind::kJsonSchema:
      return JsonSchemaToGbnf(spec.text);
    case ConstraintKind::kJsonObject:
      return JsonObjectGbnf();
    case ConstraintKind::kRegex: {
      auto expr = RegexToGbnf(spec.text, RegexTarget::kText);
      if (!expr.ok()) return expr.status();
      return absl::StrCat("root ::= ", *expr, "\n");
    }
    case ConstraintKind::kGrammar:
      return spec.text;
  }
  return absl::InvalidArgumentError("unknown constraint kind");
}

absl::StatusOr<Grammar> CompileConstraintGrammar(const ConstraintSpec& spec) {
  auto gbnf = ConstraintToGbnf(spec);
  if (!gbnf.ok()) return gbnf.status();
  auto grammar = ParseGbnf(*gbnf);
  if (!grammar.ok() && spec.kind != ConstraintKind::kGrammar) {
    // The translators emit valid GBNF; what can still fail is a property of
    // the user's schema or regex (such as a $ref cycle that consumes
    // nothing), so say which input it came from.
    return absl::Status(grammar.status().code(),
                        absl::StrCat(ConstraintKindName(spec.kind), ": ",
                                     grammar.status().message()));
  }
  return grammar;
}

CompiledConstraint::CompiledConstraint(ConstraintSpec spec,
                                       std::shared_ptr<const Grammar> g,
                                       std::shared_ptr<const TokenTrie> trie,
                                       std::shared_ptr<TokenMasker> masker,
                                       const MaskerLimits& limits)
    : spec_(std::move(spec)),
      grammar_(std::move(g)),
      trie_(std::move(trie)),
      limits_(limits),
      masker_(std::move(masker)) {}

absl::StatusOr<std::shared_ptr<const CompiledConstraint>>
CompiledConstraint::Compile(const ConstraintSpec& spec,
                            std::shared_ptr<const TokenTrie> trie,
                            const MaskerLimits& limits) {
  auto grammar = CompileConstraintGrammar(spec);
  if (!grammar.ok()) return grammar.status();
  auto shared = std::make_shared<const Grammar>(std::move(*grammar));
  auto masker = TokenMasker::Create(shared, trie, limits);
  if (!masker.ok()) return masker.status();
  // The start state's mask, here rather than on the engine thread.
  std::vector<uint32_t> bits(trie->mask_words());
  if (absl::Status s = (*masker)->FillMask((*masker)->initial_state(), bits);
      !s.ok()) {
    return s;
  }
  return std::shared_ptr<const CompiledConstraint>(new CompiledConstraint(
      spec, std::move(shared), std::move(trie), std::move(*masker), limits));
}

absl::StatusOr<ConstraintState> CompiledConstraint::NewState() const {
  std::shared_ptr<TokenMasker> masker;
  {
    absl::MutexLock lock(&mu_);
    if (masker_->OverBudget()) {
      auto fresh = TokenMasker::Create(grammar_, trie_, limits_);
      if (!fresh.ok()) return fresh.status();
      masker_ = std::move(*fresh);
    }
    masker = masker_;
  }
  const TokenMasker::Step start = masker->initial_step();
  return ConstraintState(std::move(masker), start.state, start.accepting,
                         start.can_continue);
}

MaskerStats CompiledConstraint::stats() const {
  std::shared_ptr<TokenMasker> masker;
  {
    absl::MutexLock lock(&mu_);
    masker = masker_;
  }
  return masker->stats();
}

absl::Status ConstraintState::FillAllowedMask(std::span<uint32_t> bits) {
  if (ended_) {
    return absl::FailedPreconditionError(
        "the constraint already ended with an end-of-generation token");
  }
  return masker_->FillMask(state_, bits);
}

absl::Status ConstraintState::AcceptToken(int32_t token) {
  if (ended_) {
    return absl::FailedPreconditionError(
        "the constraint already ended with an end-of-generation token");
  }
  if (masker_->trie().IsEndOfGeneration(token)) {
    if (!accepting_) {
      return absl::InvalidArgumentError(
          absl::StrCat("end-of-generation token ", token,
                       " before the output matches the constraint"));
    }
    ended_ = true;
    return absl::OkStatus();
  }
  return Take(masker_->Advance(state_, token), [token] {
    return absl::StrCat("token ", token, " is not allowed by the constraint");
  });
}

absl::Status ConstraintState::AcceptText(absl::string_view bytes) {
  if (ended_) {
    return absl::FailedPreconditionError(
        "the constraint already ended with an end-of-generation token");
  }
  return Take(masker_->AdvanceBytes(state_, bytes), [] {
    return std::string("the text is not allowed by the constraint");
  });
}

absl::Status ConstraintState::Take(absl::StatusOr<TokenMasker::Step> step,
                                   absl::FunctionRef<std::string()> refusal) {
  if (!step.ok()) return step.status();
  if (step->state == TokenMasker::kDead) {
    return absl::InvalidArgumentError(refusal());
  }
  state_ = step->state;
  accepting_ = step->accepting;
  can_continue_ = step->can_continue;
  return absl::OkStatus();
}

}  // namespace lumen::engine::constrained
