#include "engine/model/model_config.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/model/model_family.h"

namespace lumen::engine {

absl::string_view RopeScalingName(RopeScalingType type) {
  switch (type) {
    case RopeScalingType::kNone:
      return "none";
    case RopeScalingType::kLinear:
      return "linear";
    case RopeScalingType::kYarn:
      return "yarn";
    case RopeScalingType::kLongRope:
      return "longrope";
  }
  return "?";
}

namespace {

// RoPE keys as llama.cpp's load_hparams reads them for every architecture.
absl::Status ReadRope(const GgufFile& f, const std::string& arch,
                      ModelConfig* c) {
  auto key = [&](absl::string_view suffix) {
    return absl::StrCat(arch, ".", suffix);
  };
  RopeConfig& r = c->rope;
  ASSIGN_OR_RETURN(r.dim, f.GetIntOr(key("rope.dimension_count"), c->head_dim));
  if (r.dim <= 0 || r.dim > c->head_dim || r.dim % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model ", arch, ": ", key("rope.dimension_count"), " ", r.dim,
        " must be even and at most the head dimension ", c->head_dim));
  }
  ASSIGN_OR_RETURN(r.base, f.GetFloatOr(key("rope.freq_base"), 10000.0));
  r.base_sliding = r.base;
  std::string type = "linear";
  if (const GgufValue* t = f.Find(key("rope.scaling.type"))) {
    if (t->type != GgufValueType::kString) {
      return absl::InvalidArgumentError(
          absl::StrCat(key("rope.scaling.type"), " is not a string"));
    }
    type = std::string(t->str);
  }
  if (type == "none") {
    r.scaling = RopeScalingType::kNone;
  } else if (type == "linear") {
    r.scaling = RopeScalingType::kLinear;
  } else if (type == "yarn") {
    r.scaling = RopeScalingType::kYarn;
  } else if (type == "longrope") {
    r.scaling = RopeScalingType::kLongRope;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", arch, ": ", key("rope.scaling.type"), " '", type,
                     "' is not supported (none, linear, yarn, longrope)"));
  }
  // The factor's key changed name once; llama.cpp reads both.
  double factor = 0.0;
  if (f.Find(key("rope.scaling.factor")) != nullptr) {
    ASSIGN_OR_RETURN(factor, f.GetFloat(key("rope.scaling.factor")));
  } else {
    ASSIGN_OR_RETURN(factor, f.GetFloatOr(key("rope.scale_linear"), 0.0));
  }
  if (factor < 0.0 || !std::isfinite(factor)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model ", arch, ": rope scaling factor ", factor, " is negative"));
  }
  r.factor =
      factor == 0.0 || r.scaling == RopeScalingType::kNone ? 1.0 : factor;
  ASSIGN_OR_RETURN(
      r.original_context,
      f.GetIntOr(key("rope.scaling.original_context_length"), c->n_ctx_train));
  ASSIGN_OR_RETURN(r.attn_factor,
                   f.GetFloatOr(key("rope.scaling.attn_factor"), 1.0));
  if (r.original_context <= 0 || r.attn_factor <= 0.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", arch, ": rope.scaling.original_context_length ",
                     r.original_context, " and rope.scaling.attn_factor ",
                     r.attn_factor, " must be positive"));
  }
  const bool freqs = f.FindTensor("rope_freqs.weight") != nullptr;
  const bool is_long = f.FindTensor("rope_factors_long.weight") != nullptr;
  const bool is_short = f.FindTensor("rope_factors_short.weight") != nullptr;
  if (is_long != is_short) {
    return absl::InvalidArgumentError(
        "rope_factors_long.weight and rope_factors_short.weight come in "
        "pairs; the file has only one");
  }
  // llama.cpp prefers rope_freqs when a file has both kinds.
  r.factor_tensors = freqs     ? RopeFactorTensors::kFreqs
                     : is_long ? RopeFactorTensors::kLongShort
                               : RopeFactorTensors::kNone;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::FromGguf(const GgufFile& f) {
  ModelConfig c;
  ASSIGN_OR_RETURN(absl::string_view arch, f.GetString("general.architecture"));
  c.arch = std::string(arch);
  c.family = FindModelFamily(c.arch);
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
      c.n_heads % c.n_kv_heads != 0 || c.n_ctx_train <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", c.arch, ": bad shape (embedding_length ",
                     c.n_embd, ", block_count ", c.n_layers, ", head_count ",
                     c.n_heads, ", head_count_kv ", c.n_kv_heads,
                     ", context_length ", c.n_ctx_train, ")"));
  }
  ASSIGN_OR_RETURN(c.head_dim, f.GetIntOr(key("attention.key_length"),
                                          c.n_embd / c.n_heads));
  ASSIGN_OR_RETURN(const int64_t value_dim,
                   f.GetIntOr(key("attention.value_length"), c.head_dim));
  if (c.head_dim <= 0 || value_dim != c.head_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", c.arch, ": attention.key_length ", c.head_dim,
                     " and attention.value_length ", value_dim,
                     " must be equal and positive"));
  }
  RETURN_IF_ERROR(ReadRope(f, c.arch, &c));
  ASSIGN_OR_RETURN(c.norm_eps,
                   f.GetFloatOr(key("attention.layer_norm_rms_epsilon"), 1e-5));
  c.attention_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  ASSIGN_OR_RETURN(c.n_experts, f.GetIntOr(key("expert_count"), 0));
  ASSIGN_OR_RETURN(c.n_experts_used, f.GetIntOr(key("expert_used_count"), 0));
  if (c.n_experts > 0) {
    if (c.n_experts_used <= 0 || c.n_experts_used > c.n_experts) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model ", c.arch, ": expert_used_count ", c.n_experts_used,
          " must be in [1, expert_count ", c.n_experts, "]"));
    }
    // Mixtral keeps the expert width in feed_forward_length; the qwen MoE
    // families have their own key (the family may change the default).
    ASSIGN_OR_RETURN(c.n_ff_expert,
                     f.GetIntOr(key("expert_feed_forward_length"), c.n_ff));
  }
  c.has_qkv_bias = f.FindTensor("blk.0.attn_q.bias") != nullptr ||
                   f.FindTensor("blk.0.attn_qkv.bias") != nullptr;
  c.tied_output = f.FindTensor("output.weight") == nullptr;
  if (const GgufTensorInfo* emb = f.FindTensor("token_embd.weight")) {
    if (emb->dims.size() == 2) c.n_vocab = emb->dims[1];
  }
  if (c.n_vocab == 0) {
    if (const GgufValue* tokens = f.Find("tokenizer.ggml.tokens")) {
      c.n_vocab = static_cast<int64_t>(tokens->elems.size());
    }
  }
  if (c.family != nullptr && c.family->configure != nullptr) {
    RETURN_IF_ERROR(c.family->configure(f, &c));
  }
  if (c.moe() && c.n_ff_expert <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model ", c.arch, ": mixture of experts without an expert width"));
  }
  if (c.sliding_window < 0 || c.sliding_period < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", c.arch, ": attention.sliding_window ",
                     c.sliding_window, " is negative"));
  }
  return c;
}

}  // namespace lumen::engine
