#include "engine/model/layer_weights.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/model/model_family.h"
#include "engine/model/weight_loader.h"

namespace lumen::engine {

using kernels::Linear;

namespace {

// q, k and v stacked into one matrix (and their biases, if any).
absl::StatusOr<std::unique_ptr<Linear>> LoadQkv(const GgufFile& f,
                                                const ModelConfig& c,
                                                const std::string& p,
                                                WeightMode mode) {
  const int64_t d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim();
  if (f.FindTensor(p + "attn_qkv.weight") != nullptr) {
    ASSIGN_OR_RETURN(const GgufTensorInfo* wqkv,
                     FindWeight(f, p + "attn_qkv.weight", {d, qd + 2 * kvd}));
    std::vector<float> bias;
    if (f.FindTensor(p + "attn_qkv.bias") != nullptr) {
      ASSIGN_OR_RETURN(bias, ReadVector(f, p + "attn_qkv.bias", qd + 2 * kvd));
    }
    return MakeLinear(f, {WholeMatrix(wqkv)}, std::move(bias), mode);
  }
  ASSIGN_OR_RETURN(const GgufTensorInfo* wq,
                   FindWeight(f, p + "attn_q.weight", {d, qd}));
  ASSIGN_OR_RETURN(const GgufTensorInfo* wk,
                   FindWeight(f, p + "attn_k.weight", {d, kvd}));
  ASSIGN_OR_RETURN(const GgufTensorInfo* wv,
                   FindWeight(f, p + "attn_v.weight", {d, kvd}));
  std::vector<float> bias;
  if (f.FindTensor(p + "attn_q.bias") != nullptr) {
    ASSIGN_OR_RETURN(bias, ReadVector(f, p + "attn_q.bias", qd));
    ASSIGN_OR_RETURN(std::vector<float> bk,
                     ReadVector(f, p + "attn_k.bias", kvd));
    ASSIGN_OR_RETURN(std::vector<float> bv,
                     ReadVector(f, p + "attn_v.bias", kvd));
    bias.insert(bias.end(), bk.begin(), bk.end());
    bias.insert(bias.end(), bv.begin(), bv.end());
  }
  return MakeLinear(f, {WholeMatrix(wq), WholeMatrix(wk), WholeMatrix(wv)},
                    std::move(bias), mode);
}

// Dense gated FFN: gate and up fused into one matrix, gate rows first.
absl::Status LoadDenseFfn(const GgufFile& f, const ModelConfig& c,
                          const std::string& p, WeightMode mode,
                          LayerWeights* w) {
  const int64_t d = c.n_embd, ff = c.n_ff;
  if (f.FindTensor(p + "ffn_gate.weight") != nullptr) {
    ASSIGN_OR_RETURN(const GgufTensorInfo* gate,
                     FindWeight(f, p + "ffn_gate.weight", {d, ff}));
    ASSIGN_OR_RETURN(const GgufTensorInfo* up,
                     FindWeight(f, p + "ffn_up.weight", {d, ff}));
    ASSIGN_OR_RETURN(
        w->gate_up,
        MakeLinear(f, {WholeMatrix(gate), WholeMatrix(up)}, {}, mode));
  } else {
    // Phi-3 stores both halves in ffn_up.
    ASSIGN_OR_RETURN(const GgufTensorInfo* gate_up,
                     FindWeight(f, p + "ffn_up.weight", {d, 2 * ff}));
    ASSIGN_OR_RETURN(w->gate_up,
                     MakeLinear(f, {WholeMatrix(gate_up)}, {}, mode));
  }
  ASSIGN_OR_RETURN(const GgufTensorInfo* dn,
                   FindWeight(f, p + "ffn_down.weight", {ff, d}));
  ASSIGN_OR_RETURN(w->down, MakeLinear(f, {WholeMatrix(dn)}, {}, mode));
  return absl::OkStatus();
}

// Mixture-of-experts weights of one layer: the router (kept fp32: routing
// decisions are discrete), every expert's slice of the 3-D expert tensors,
// and qwen2moe's shared expert with its gate.
absl::StatusOr<std::unique_ptr<MoeFfn>> LoadMoeFfn(const GgufFile& f,
                                                   const ModelConfig& c,
                                                   const std::string& p,
                                                   WeightMode mode,
                                                   int64_t max_tokens) {
  const int64_t d = c.n_embd, E = c.n_experts, ff = c.n_ff_expert;
  MoeShape shape{
      d, ff, E, c.n_experts_used, c.expert_weights_norm, c.n_ff_shared};
  ASSIGN_OR_RETURN(const GgufTensorInfo* router,
                   FindWeight(f, p + "ffn_gate_inp.weight", {d, E}));
  ASSIGN_OR_RETURN(std::unique_ptr<Linear> router_linear,
                   MakeLinear(f, {WholeMatrix(router)}, {}, WeightMode::kF32));
  ASSIGN_OR_RETURN(const GgufTensorInfo* gate,
                   FindWeight(f, p + "ffn_gate_exps.weight", {d, ff, E}));
  ASSIGN_OR_RETURN(const GgufTensorInfo* up,
                   FindWeight(f, p + "ffn_up_exps.weight", {d, ff, E}));
  ASSIGN_OR_RETURN(const GgufTensorInfo* down,
                   FindWeight(f, p + "ffn_down_exps.weight", {ff, d, E}));
  std::vector<FfnExpert> experts(E);
  for (int64_t e = 0; e < E; ++e) {
    ASSIGN_OR_RETURN(
        experts[e].gate_up,
        MakeLinear(f, {ExpertSlice(gate, e), ExpertSlice(up, e)}, {}, mode));
    ASSIGN_OR_RETURN(experts[e].down,
                     MakeLinear(f, {ExpertSlice(down, e)}, {}, mode));
  }
  FfnExpert shared;
  std::vector<float> shared_gate;
  if (shape.shared_ff > 0) {
    const int64_t sff = shape.shared_ff;
    ASSIGN_OR_RETURN(const GgufTensorInfo* sg,
                     FindWeight(f, p + "ffn_gate_shexp.weight", {d, sff}));
    ASSIGN_OR_RETURN(const GgufTensorInfo* su,
                     FindWeight(f, p + "ffn_up_shexp.weight", {d, sff}));
    ASSIGN_OR_RETURN(const GgufTensorInfo* sd,
                     FindWeight(f, p + "ffn_down_shexp.weight", {sff, d}));
    ASSIGN_OR_RETURN(
        shared.gate_up,
        MakeLinear(f, {WholeMatrix(sg), WholeMatrix(su)}, {}, mode));
    ASSIGN_OR_RETURN(shared.down, MakeLinear(f, {WholeMatrix(sd)}, {}, mode));
    ASSIGN_OR_RETURN(shared_gate,
                     ReadVector(f, p + "ffn_gate_inp_shexp.weight", d));
  }
  return MoeFfn::Create(shape, std::move(router_linear), std::move(experts),
                        std::move(shared), std::move(shared_gate), max_tokens);
}

}  // namespace

std::vector<Linear*> LayerWeights::matrices() const {
  std::vector<Linear*> m = {qkv.get(), wo.get()};
  if (gate_up) m.insert(m.end(), {gate_up.get(), down.get()});
  return m;
}

int64_t LayerWeights::norm_bytes() const {
  return 4 * (attn_norm.size() + q_norm.size() + k_norm.size() +
              post_attn_norm.size() + ffn_norm.size() + post_ffn_norm.size());
}

absl::StatusOr<LayerWeights> LoadLayerWeights(const GgufFile& f,
                                              const ModelConfig& c,
                                              int64_t layer, WeightMode mode,
                                              int64_t max_tokens) {
  const std::string p = absl::StrCat("blk.", layer, ".");
  const int64_t d = c.n_embd;
  LayerWeights w;
  for (BlockStep step : c.family->block) {
    // Each case in braces: ASSIGN_OR_RETURN declares locals.
    switch (step) {
      case BlockStep::kAttentionNorm: {
        ASSIGN_OR_RETURN(w.attn_norm, ReadVector(f, p + "attn_norm.weight", d));
        break;
      }
      case BlockStep::kQkvProjection: {
        ASSIGN_OR_RETURN(w.qkv, LoadQkv(f, c, p, mode));
        break;
      }
      case BlockStep::kQkNorm: {
        ASSIGN_OR_RETURN(w.q_norm,
                         ReadVector(f, p + "attn_q_norm.weight", c.head_dim));
        ASSIGN_OR_RETURN(w.k_norm,
                         ReadVector(f, p + "attn_k_norm.weight", c.head_dim));
        break;
      }
      case BlockStep::kOutputProjection: {
        ASSIGN_OR_RETURN(
            const GgufTensorInfo* wo,
            FindWeight(f, p + "attn_output.weight", {c.q_dim(), d}));
        ASSIGN_OR_RETURN(w.wo, MakeLinear(f, {WholeMatrix(wo)}, {}, mode));
        break;
      }
      case BlockStep::kPostAttentionNorm: {
        ASSIGN_OR_RETURN(w.post_attn_norm,
                         ReadVector(f, p + "post_attention_norm.weight", d));
        break;
      }
      case BlockStep::kFfnNorm: {
        ASSIGN_OR_RETURN(w.ffn_norm, ReadVector(f, p + "ffn_norm.weight", d));
        break;
      }
      case BlockStep::kSwiGlu:
      case BlockStep::kGeGlu: {
        if (!c.moe()) {
          RETURN_IF_ERROR(LoadDenseFfn(f, c, p, mode, &w));
        } else if (step == BlockStep::kSwiGlu) {
          ASSIGN_OR_RETURN(w.moe, LoadMoeFfn(f, c, p, mode, max_tokens));
        } else {
          return absl::InvalidArgumentError(absl::StrCat(
              "model ", c.arch, ": experts are supported with SwiGLU only"));
        }
        break;
      }
      case BlockStep::kPostFfnNorm: {
        ASSIGN_OR_RETURN(w.post_ffn_norm,
                         ReadVector(f, p + "post_ffw_norm.weight", d));
        break;
      }
      case BlockStep::kRope:
      case BlockStep::kAttention:
      case BlockStep::kAddToResidual:
        break;  // no weights
    }
  }
  if (w.qkv == nullptr || w.wo == nullptr ||
      (w.gate_up == nullptr && w.moe == nullptr)) {
    return absl::InternalError(absl::StrCat(
        "family ", c.arch, " has a block without attention or FFN"));
  }
  return w;
}

}  // namespace lumen::engine
