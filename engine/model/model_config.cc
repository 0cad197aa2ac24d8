#include "engine/model/model_config.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace lumen::engine {

absl::StatusOr<ModelConfig> ModelConfig::FromGguf(const GgufFile& f) {
  ModelConfig c;
  ASSIGN_OR_RETURN(absl::string_view arch, f.GetString("general.architecture"));
  c.arch = std::string(arch);
  if (const GgufValue* n = f.Find("general.name");
      n != nullptr && n->type == GgufValueType::kString) {
    c.name = std::string(n->str);
  }
  auto key = [&](absl::string_view suffix) {
    return absl::StrCat(c.arch, ".", suffix);
  };
  ASSIGN_OR_RETURN(c.n_embd, f.GetInt(key("embedding_length")));
  ASSIGN_OR_RETURN(c.n_layers, f.GetInt(key("block_count")));
  ASSIGN_OR_RETURN(c.n_heads, f.GetInt(key("attention.head_count")));
  ASSIGN_OR_RETURN(c.n_kv_heads,
                   f.GetIntOr(key("attention.head_count_kv"), c.n_heads));
  ASSIGN_OR_RETURN(c.n_ff, f.GetIntOr(key("feed_forward_length"), 0));
  ASSIGN_OR_RETURN(c.n_ctx_train, f.GetIntOr(key("context_length"), 2048));
  if (c.n_embd <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
      c.n_heads % c.n_kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", c.arch, ": bad shape (embedding_length ",
                     c.n_embd, ", block_count ", c.n_layers, ", head_count ",
                     c.n_heads, ", head_count_kv ", c.n_kv_heads, ")"));
  }
  ASSIGN_OR_RETURN(c.head_dim, f.GetIntOr(key("attention.key_length"),
                                          c.n_embd / c.n_heads));
  ASSIGN_OR_RETURN(c.rope_dim,
                   f.GetIntOr(key("rope.dimension_count"), c.head_dim));
  if (c.head_dim <= 0 || c.rope_dim <= 0 || c.rope_dim > c.head_dim ||
      c.rope_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", c.arch, ": bad head dimension ", c.head_dim,
                     " or rope.dimension_count ", c.rope_dim));
  }
  ASSIGN_OR_RETURN(c.rope_base, f.GetFloatOr(key("rope.freq_base"), 10000.0));
  ASSIGN_OR_RETURN(c.rope_scale, f.GetFloatOr(key("rope.scale_linear"), 1.0));
  if (const GgufValue* t = f.Find(key("rope.scaling.type"));
      t != nullptr && t->type == GgufValueType::kString && t->str == "linear") {
    ASSIGN_OR_RETURN(c.rope_scale,
                     f.GetFloatOr(key("rope.scaling.factor"), 1.0));
  }
  ASSIGN_OR_RETURN(c.norm_eps,
                   f.GetFloatOr(key("attention.layer_norm_rms_epsilon"), 1e-5));
  ASSIGN_OR_RETURN(c.n_experts, f.GetIntOr(key("expert_count"), 0));
  ASSIGN_OR_RETURN(c.n_experts_used, f.GetIntOr(key("expert_used_count"), 0));
  if (c.n_experts > 0) {
    if (c.n_experts_used <= 0 || c.n_experts_used > c.n_experts) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model ", c.arch, ": expert_used_count ", c.n_experts_used,
          " must be in [1, expert_count ", c.n_experts, "]"));
    }
    // Mixtral keeps the expert width in feed_forward_length; qwen2moe has
    // its own keys (and a shared expert).
    ASSIGN_OR_RETURN(c.n_ff_expert,
                     f.GetIntOr(key("expert_feed_forward_length"), c.n_ff));
    ASSIGN_OR_RETURN(c.n_ff_shared,
                     f.GetIntOr(key("expert_shared_feed_forward_length"), 0));
    if (c.arch == "qwen2moe" && c.n_ff_shared == 0) c.n_ff_shared = c.n_ff;
    if (c.n_ff_expert <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model ", c.arch, ": mixture of experts without an expert width"));
    }
  }
  c.has_qkv_bias = f.FindTensor("blk.0.attn_q.bias") != nullptr;
  c.tied_output = f.FindTensor("output.weight") == nullptr;
  if (const GgufTensorInfo* emb = f.FindTensor("token_embd.weight")) {
    if (emb->dims.size() == 2) c.n_vocab = emb->dims[1];
  }
  if (c.n_vocab == 0) {
    if (const GgufValue* tokens = f.Find("tokenizer.ggml.tokens")) {
      c.n_vocab = static_cast<int64_t>(tokens->elems.size());
    }
  }
  return c;
}

}  // namespace lumen::engine
