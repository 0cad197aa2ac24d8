// qwen3 and qwen3moe (llama.cpp src/models/qwen3.cpp, qwen3moe.cpp): the
// qwen2 layer without biases, plus an RMSNorm of every q and k head before
// RoPE. The q width comes from attention.key_length and need not equal
// n_embd. Qwen3-MoE routes each token to its top-k experts (renormalized,
// no shared expert); an expert's width defaults to n_ff / experts used.

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/model/model_config.h"
#include "engine/model/model_family.h"

namespace lumen::engine {

namespace {

constexpr BlockStep kQwen3Block[] = {
    BlockStep::kAttentionNorm, BlockStep::kQkvProjection,
    BlockStep::kQkNorm,        BlockStep::kRope,
    BlockStep::kAttention,     BlockStep::kOutputProjection,
    BlockStep::kAddToResidual, BlockStep::kFfnNorm,
    BlockStep::kSwiGlu,        BlockStep::kAddToResidual,
};

absl::Status ConfigureQwen3Moe(const GgufFile& f, ModelConfig* c) {
  if (!c->moe()) {
    return absl::InvalidArgumentError(
        "model qwen3moe: expert_count and expert_used_count are required");
  }
  c->expert_weights_norm = true;
  ASSIGN_OR_RETURN(
      c->n_ff_expert,
      f.GetIntOr(absl::StrCat(c->arch, ".expert_feed_forward_length"),
                 c->n_ff / c->n_experts_used));
  return absl::OkStatus();
}

}  // namespace

extern const ModelFamily kQwen3Family, kQwen3MoeFamily;
const ModelFamily kQwen3Family = {"qwen3", kernels::RopeStyle::kHalves,
                                  kQwen3Block, nullptr};
const ModelFamily kQwen3MoeFamily = {"qwen3moe", kernels::RopeStyle::kHalves,
                                     kQwen3Block, &ConfigureQwen3Moe};

}  // namespace lumen::engine
