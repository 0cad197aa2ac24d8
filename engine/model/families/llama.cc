// llama (llama.cpp src/models/llama.cpp): Llama 1-3, Mistral, SmolLM, and
// Mixtral, which is llama with routed experts in place of the dense FFN.
// Pre-norm attention and SwiGLU FFN; RoPE rotates adjacent pairs because
// llama.cpp's converter permutes the q/k rows for it. Llama 3.1+ frequency
// factors arrive as the rope_freqs.weight tensor (model_config.cc).

#include "engine/model/model_config.h"
#include "engine/model/model_family.h"

namespace lumen::engine {

namespace {

constexpr BlockStep kLlamaBlock[] = {
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

absl::Status ConfigureLlama(const GgufFile&, ModelConfig* c) {
  c->expert_weights_norm = true;  // Mixtral renormalizes its top-k weights
  return absl::OkStatus();
}

}  // namespace

extern const ModelFamily kLlamaFamily;
const ModelFamily kLlamaFamily = {"llama", kernels::RopeStyle::kAdjacent,
                                  kLlamaBlock, &ConfigureLlama};

}  // namespace lumen::engine
