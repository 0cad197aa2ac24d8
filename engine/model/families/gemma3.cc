// gemma3 (llama.cpp src/models/gemma3.cpp, hyper-parameters in
// llama-model.cpp): embeddings times sqrt(n_embd); both sublayers normalized
// on the way in and on the way out; q/k heads RMS-normalized; a GELU-tanh
// gated FFN. Five of every six layers attend to a sliding window and use
// their own RoPE base (rope.freq_base_swa, 10000) without the context
// scaling; every sixth layer attends to everything. The GGUF norm weights
// already hold (1 + w): they are used as they are.

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/model/model_config.h"
#include "engine/model/model_family.h"

namespace lumen::engine {

namespace {

constexpr BlockStep kGemma3Block[] = {
    BlockStep::kAttentionNorm,
    BlockStep::kQkvProjection,
    BlockStep::kQkNorm,
    BlockStep::kRope,
    BlockStep::kAttention,
    BlockStep::kOutputProjection,
    BlockStep::kPostAttentionNorm,
    BlockStep::kAddToResidual,
    BlockStep::kFfnNorm,
    BlockStep::kGeGlu,
    BlockStep::kPostFfnNorm,
    BlockStep::kAddToResidual,
};

absl::Status ConfigureGemma3(const GgufFile& f, ModelConfig* c) {
  auto key = [&](absl::string_view suffix) {
    return absl::StrCat(c->arch, ".", suffix);
  };
  c->embedding_scale = std::sqrt(static_cast<double>(c->n_embd));
  // Gemma 3 27B (62 layers) scales queries by its width per head, the
  // others by their head dimension (query_pre_attn_scalar).
  c->attention_scale =
      1.0 / std::sqrt(c->n_layers == 62
                          ? static_cast<double>(c->n_embd / c->n_heads)
                          : static_cast<double>(c->head_dim));
  // Real Gemma 3 GGUFs have no pattern key: llama.cpp fixes the period.
  ASSIGN_OR_RETURN(c->sliding_window,
                   f.GetInt(key("attention.sliding_window")));
  c->sliding_period = 6;
  ASSIGN_OR_RETURN(c->rope.base_sliding,
                   f.GetFloatOr(key("rope.freq_base_swa"), 10000.0));
  return absl::OkStatus();
}

}  // namespace

extern const ModelFamily kGemma3Family;
const ModelFamily kGemma3Family = {"gemma3", kernels::RopeStyle::kHalves,
                                   kGemma3Block, &ConfigureGemma3};

}  // namespace lumen::engine
