// The block steps of Transformer::Forward: what each BlockStep computes over
// the step's tokens, and which phase of the profile it is charged to. A
// family's layer is its list of these steps (engine/model/families/).

#include "base/status_macros.h"
#include "engine/model/transformer.h"

namespace lumen::engine {

absl::Status Transformer::RunStep(BlockStep step, int64_t layer) {
  const int64_t n = step_tokens_, d = config_.n_embd;
  const float eps = static_cast<float>(config_.norm_eps);
  const LayerWeights& w = layers_[layer];
  switch (step) {
    case BlockStep::kAttentionNorm:
      kernels::RmsNorm(x_.data(), w.attn_norm.data(), n, d, eps, xn_.data());
      Charge(&profile_.other);
      break;
    case BlockStep::kQkvProjection:
      RETURN_IF_ERROR(ProjectQkv(layer));
      Charge(&profile_.matmul);
      break;
    case BlockStep::kQkNorm:
      NormalizeQkHeads(layer);
      Charge(&profile_.other);
      break;
    case BlockStep::kRope:
      RotateQk(layer);
      Charge(&profile_.other);
      break;
    case BlockStep::kAttention:
      Attend(layer);
      Charge(&profile_.attention);
      break;
    case BlockStep::kOutputProjection:
      RETURN_IF_ERROR(ProjectAttentionOutput(layer));
      Charge(&profile_.matmul);
      break;
    case BlockStep::kPostAttentionNorm:
      kernels::RmsNorm(proj_.data(), w.post_attn_norm.data(), n, d, eps,
                       proj_.data());
      Charge(&profile_.other);
      break;
    case BlockStep::kFfnNorm:
      kernels::RmsNorm(x_.data(), w.ffn_norm.data(), n, d, eps, xn_.data());
      Charge(&profile_.other);
      break;
    case BlockStep::kSwiGlu:
      RETURN_IF_ERROR(GatedFfn(layer, /*gelu=*/false));
      break;
    case BlockStep::kGeGlu:
      RETURN_IF_ERROR(GatedFfn(layer, /*gelu=*/true));
      break;
    case BlockStep::kPostFfnNorm:
      kernels::RmsNorm(proj_.data(), w.post_ffn_norm.data(), n, d, eps,
                       proj_.data());
      Charge(&profile_.other);
      break;
    case BlockStep::kAddToResidual:
      kernels::AddInPlace(x_.data(), proj_.data(), n * d);
      Charge(&profile_.other);
      break;
  }
  return absl::OkStatus();
}

absl::Status Transformer::ProjectQkv(int64_t layer) {
  const int64_t n = step_tokens_, d = config_.n_embd;
  const int64_t qd = config_.q_dim(), kvd = config_.kv_dim();
  const int64_t qkv_dim = qd + 2 * kvd;
  RETURN_IF_ERROR(
      layers_[layer].qkv->Forward(xn_.data(), n, qkv_.data(), &scratch_));
  if (!lora_runs_.empty()) {
    ApplyLora(layer, LoraTarget::kQ, xn_.data(), d, qkv_.data(), qkv_dim);
    ApplyLora(layer, LoraTarget::kK, xn_.data(), d, qkv_.data() + qd, qkv_dim);
    ApplyLora(layer, LoraTarget::kV, xn_.data(), d, qkv_.data() + qd + kvd,
              qkv_dim);
  }
  return absl::OkStatus();
}

void Transformer::NormalizeQkHeads(int64_t layer) {
  const ModelConfig& c = config_;
  const int64_t qkv_dim = c.q_dim() + 2 * c.kv_dim();
  const float eps = static_cast<float>(c.norm_eps);
  const LayerWeights& w = layers_[layer];
  kernels::HeadRmsNorm(qkv_.data(), qkv_dim, step_tokens_, c.n_heads,
                       c.head_dim, w.q_norm.data(), eps);
  kernels::HeadRmsNorm(qkv_.data() + c.q_dim(), qkv_dim, step_tokens_,
                       c.n_kv_heads, c.head_dim, w.k_norm.data(), eps);
}

void Transformer::RotateQk(int64_t layer) {
  const ModelConfig& c = config_;
  const int64_t qkv_dim = c.q_dim() + 2 * c.kv_dim();
  const int r = RopeIndex(layer);
  const kernels::RopeStyle style = family().rope_style;
  kernels::Rope(qkv_.data(), qkv_dim, rope_cos_[r].data(), rope_sin_[r].data(),
                step_tokens_, c.n_heads, c.head_dim, c.rope.dim, style);
  kernels::Rope(qkv_.data() + c.q_dim(), qkv_dim, rope_cos_[r].data(),
                rope_sin_[r].data(), step_tokens_, c.n_kv_heads, c.head_dim,
                c.rope.dim, style);
}

void Transformer::Attend(int64_t layer) {
  const ModelConfig& c = config_;
  const int64_t qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim;
  const int64_t qkv_dim = qd + 2 * kvd;
  KvCache& cache = *step_cache_;
  const int64_t bs = cache.shape().block_size;
  const KvElement element = cache.element();
  for (int64_t i = 0; i < step_tokens_; ++i) {
    const int32_t pos = positions_[i];
    const int32_t block = queries_[i].block_table[pos / bs];
    const int64_t slot = pos % bs;
    const float* k = &qkv_[i * qkv_dim + qd];
    const float* v = k + kvd;
    uint8_t* keys = cache.Keys<uint8_t>(block, layer);
    uint8_t* values = cache.Values<uint8_t>(block, layer);
    for (int64_t h = 0; h < c.n_kv_heads; ++h) {
      StoreKvRow(element, k + h * hd, hd, cache.Row(keys, h, slot));
      StoreKvRow(element, v + h * hd, hd, cache.Row(values, h, slot));
    }
  }
  const kernels::AttentionShape shape{c.n_heads, c.n_kv_heads, hd,
                                      static_cast<float>(c.attention_scale),
                                      c.sliding(layer) ? c.sliding_window : 0};
  kernels::PagedAttention(qkv_.data(), qkv_dim, queries_.data(), step_tokens_,
                          cache, layer, shape, attn_scratch_.data(),
                          options_.num_threads, options_.max_context,
                          attn_.data());
}

absl::Status Transformer::ProjectAttentionOutput(int64_t layer) {
  const int64_t qd = config_.q_dim();
  RETURN_IF_ERROR(layers_[layer].wo->Forward(attn_.data(), step_tokens_,
                                             proj_.data(), &scratch_));
  if (!lora_runs_.empty()) {
    ApplyLora(layer, LoraTarget::kO, attn_.data(), qd, proj_.data(),
              config_.n_embd);
  }
  return absl::OkStatus();
}

absl::Status Transformer::GatedFfn(int64_t layer, bool gelu) {
  const int64_t n = step_tokens_, d = config_.n_embd, ff = config_.n_ff;
  const LayerWeights& w = layers_[layer];
  if (w.moe) {
    RETURN_IF_ERROR(w.moe->Forward(xn_.data(), n, proj_.data(), &scratch_));
    Charge(&profile_.matmul);
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(
      w.gate_up->Forward(xn_.data(), n, gate_up_.data(), &scratch_));
  if (!lora_runs_.empty()) {
    ApplyLora(layer, LoraTarget::kGate, xn_.data(), d, gate_up_.data(), 2 * ff);
    ApplyLora(layer, LoraTarget::kUp, xn_.data(), d, gate_up_.data() + ff,
              2 * ff);
  }
  Charge(&profile_.matmul);
  if (gelu) {
    kernels::GeluTanhMul(gate_up_.data(), n, ff, hidden_.data());
  } else {
    kernels::SiluMul(gate_up_.data(), n, ff, hidden_.data());
  }
  Charge(&profile_.other);
  RETURN_IF_ERROR(w.down->Forward(hidden_.data(), n, proj_.data(), &scratch_));
  if (!lora_runs_.empty())
    ApplyLora(layer, LoraTarget::kDown, hidden_.data(), ff, proj_.data(), d);
  Charge(&profile_.matmul);
  return absl::OkStatus();
}

void Transformer::ApplyLora(int64_t layer, LoraTarget target, const float* x,
                            int64_t ldx, float* y, int64_t ldy) {
  for (const LoraRun& run : lora_runs_) {
    const LoraMatrix* m = run.adapter->Get(layer, target);
    if (m == nullptr) continue;
    LoraAdapter::AddDelta(*m, x + run.first_row * ldx, run.rows,
                          y + run.first_row * ldy, ldy, lora_scratch_.data());
  }
}

}  // namespace lumen::engine
