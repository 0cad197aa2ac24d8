#include "engine/model/model_family.h"

#include "absl/strings/str_cat.h"

namespace lumen::engine {

// Defined in engine/model/families/<family>.cc.
extern const ModelFamily kLlamaFamily, kQwen2Family, kQwen2MoeFamily,
    kQwen3Family, kQwen3MoeFamily, kGemma3Family, kPhi3Family;

namespace {

// The registry: one entry per family.
const ModelFamily* const kFamilies[] = {
    &kLlamaFamily,    &kQwen2Family,  &kQwen2MoeFamily, &kQwen3Family,
    &kQwen3MoeFamily, &kGemma3Family, &kPhi3Family,
};

}  // namespace

absl::string_view BlockStepName(BlockStep step) {
  switch (step) {
    case BlockStep::kAttentionNorm:
      return "attn_norm";
    case BlockStep::kQkvProjection:
      return "qkv";
    case BlockStep::kQkNorm:
      return "qk_norm";
    case BlockStep::kRope:
      return "rope";
    case BlockStep::kAttention:
      return "attention";
    case BlockStep::kOutputProjection:
      return "attn_output";
    case BlockStep::kPostAttentionNorm:
      return "post_attn_norm";
    case BlockStep::kFfnNorm:
      return "ffn_norm";
    case BlockStep::kSwiGlu:
      return "swiglu";
    case BlockStep::kGeGlu:
      return "geglu_tanh";
    case BlockStep::kPostFfnNorm:
      return "post_ffw_norm";
    case BlockStep::kAddToResidual:
      return "+residual";
  }
  return "?";
}

const ModelFamily* FindModelFamily(absl::string_view arch) {
  for (const ModelFamily* f : kFamilies) {
    if (f->arch == arch) return f;
  }
  return nullptr;
}

std::string SupportedArchitectures() {
  std::string s;
  for (const ModelFamily* f : kFamilies)
    absl::StrAppend(&s, s.empty() ? "" : ", ", f->arch);
  return s;
}

std::string BlockSummary(const ModelFamily& family) {
  std::string s;
  for (BlockStep step : family.block)
    absl::StrAppend(&s, s.empty() ? "" : " > ", BlockStepName(step));
  return s;
}

}  // namespace lumen::engine
