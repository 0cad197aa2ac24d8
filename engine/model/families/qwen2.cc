// qwen2 and qwen2moe (llama.cpp src/models/qwen2.cpp, qwen2moe.cpp): the
// llama layer with q/k/v biases (loaded wherever the file has them) and RoPE
// on split halves (NEOX). Qwen2-MoE routes each token to its top-k experts
// without renormalizing their weights, and adds a shared expert gated by a
// sigmoid (moe_ffn.h).

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/model/model_config.h"
#include "engine/model/model_family.h"

namespace lumen::engine {

namespace {

constexpr BlockStep kQwen2Block[] = {
    BlockStep::kAttentionNorm,
    BlockStep::kQkvProjection,
    BlockStep::kRope,
    BlockStep::kAttention,
    BlockStep::kOutputProjection,
    BlockStep::kAddToResidual,
    BlockStep::kFfnNorm,
    BlockStep::kSwiGlu,
    BlockStep::kAddToResidual,
};

absl::Status ConfigureQwen2Moe(const GgufFile& f, ModelConfig* c) {
  c->expert_weights_norm = false;
  ASSIGN_OR_RETURN(
      c->n_ff_shared,
      f.GetIntOr(absl::StrCat(c->arch, ".expert_shared_feed_forward_length"),
                 c->n_ff));
  return absl::OkStatus();
}

}  // namespace

extern const ModelFamily kQwen2Family, kQwen2MoeFamily;
const ModelFamily kQwen2Family = {"qwen2", kernels::RopeStyle::kHalves,
                                  kQwen2Block, nullptr};
const ModelFamily kQwen2MoeFamily = {"qwen2moe", kernels::RopeStyle::kHalves,
                                     kQwen2Block, &ConfigureQwen2Moe};

}  // namespace lumen::engine
