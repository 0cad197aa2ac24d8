#include "engine/model/transformer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/quant/quant_type.h"

namespace lumen::engine {

using kernels::Linear;

namespace {

// Dense SwiGLU weights of one layer: gate and up fused into one matrix.
absl::Status LoadDenseFfn(const GgufFile& f, const ModelConfig& c,
                          const std::string& p, WeightMode mode,
                          std::unique_ptr<Linear>* gate_up,
                          std::unique_ptr<Linear>* down) {
  const int64_t d = c.n_embd;
  ASSIGN_OR_RETURN(const GgufTensorInfo* gate,
                   FindWeight(f, p + "ffn_gate.weight", {d, c.n_ff}));
  ASSIGN_OR_RETURN(const GgufTensorInfo* up,
                   FindWeight(f, p + "ffn_up.weight", {d, c.n_ff}));
  ASSIGN_OR_RETURN(
      *gate_up, MakeLinear(f, {WholeMatrix(gate), WholeMatrix(up)}, {}, mode));
  ASSIGN_OR_RETURN(const GgufTensorInfo* dn,
                   FindWeight(f, p + "ffn_down.weight", {c.n_ff, d}));
  ASSIGN_OR_RETURN(*down, MakeLinear(f, {WholeMatrix(dn)}, {}, mode));
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
  MoeShape shape{d,
                 ff,
                 E,
                 c.n_experts_used,
                 c.arch != "qwen2moe",
                 c.arch == "qwen2moe" ? c.n_ff_shared : 0};
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

absl::StatusOr<std::unique_ptr<Transformer>> Transformer::Load(
    const GgufFile& f, const TransformerOptions& options) {
  std::unique_ptr<Transformer> m(new Transformer());
  ASSIGN_OR_RETURN(m->config_, ModelConfig::FromGguf(f));
  const ModelConfig& c = m->config_;
  if (c.arch != "llama" && c.arch != "qwen2" && c.arch != "qwen2moe") {
    return absl::InvalidArgumentError(
        absl::StrCat("architecture '", c.arch,
                     "' is not supported (llama, qwen2, qwen2moe)"));
  }
  m->rope_style_ = c.arch == "llama" ? kernels::RopeStyle::kAdjacent
                                     : kernels::RopeStyle::kHalves;
  m->options_ = options;
  if (m->options_.max_context <= 0) m->options_.max_context = c.n_ctx_train;
  if (m->options_.num_threads <= 0)
    m->options_.num_threads = omp_get_max_threads();
  const int64_t T = m->options_.max_batch_tokens;
  if (T <= 0) {
    return absl::InvalidArgumentError("max_batch_tokens must be positive");
  }

  const WeightMode mode = options.weights;

  const int64_t d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim();
  ASSIGN_OR_RETURN(const GgufTensorInfo* embd,
                   FindWeight(f, "token_embd.weight", {d, c.n_vocab}));
  ASSIGN_OR_RETURN(m->output_norm_, ReadVector(f, "output_norm.weight", d));
  const GgufTensorInfo* out = embd;
  if (!c.tied_output) {
    ASSIGN_OR_RETURN(out, FindWeight(f, "output.weight", {d, c.n_vocab}));
  }
  ASSIGN_OR_RETURN(m->output_, MakeLinear(f, {WholeMatrix(out)}, {}, mode));
  m->resident_.output = m->output_->resident_bytes();
  // A tied head in fp32 or in the tensor's own packed blocks holds exactly
  // the embedding values: read rows from it instead of keeping a copy.
  const quant::QuantType* embd_packed = quant::FindQuantType(embd->type);
  const kernels::WeightFormat head = m->output_->format();
  if (c.tied_output &&
      (head == kernels::WeightFormat::kF32 ||
       (head == kernels::WeightFormat::kPacked && embd_packed != nullptr))) {
    m->token_embd_.shared = m->output_.get();
  } else if (embd_packed != nullptr && mode != WeightMode::kF32) {
    const auto bytes = f.TensorData(*embd);
    m->token_embd_.type = embd->type;
    m->token_embd_.packed.assign(bytes.begin(), bytes.end());
    m->token_embd_.row_bytes = quant::RowBytes(*embd_packed, d);
  } else {
    ASSIGN_OR_RETURN(m->token_embd_.f32, ReadFloats(f, WholeMatrix(embd)));
  }
  m->resident_.embedding = m->token_embd_.resident_bytes();
  m->resident_.norms = m->output_norm_.size() * 4;

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    Layer layer;
    ASSIGN_OR_RETURN(layer.attn_norm, ReadVector(f, p + "attn_norm.weight", d));
    ASSIGN_OR_RETURN(layer.ffn_norm, ReadVector(f, p + "ffn_norm.weight", d));
    ASSIGN_OR_RETURN(const GgufTensorInfo* wq,
                     FindWeight(f, p + "attn_q.weight", {d, qd}));
    ASSIGN_OR_RETURN(const GgufTensorInfo* wk,
                     FindWeight(f, p + "attn_k.weight", {d, kvd}));
    ASSIGN_OR_RETURN(const GgufTensorInfo* wv,
                     FindWeight(f, p + "attn_v.weight", {d, kvd}));
    std::vector<float> qkv_bias;
    if (c.has_qkv_bias) {
      ASSIGN_OR_RETURN(qkv_bias, ReadVector(f, p + "attn_q.bias", qd));
      ASSIGN_OR_RETURN(std::vector<float> bk,
                       ReadVector(f, p + "attn_k.bias", kvd));
      ASSIGN_OR_RETURN(std::vector<float> bv,
                       ReadVector(f, p + "attn_v.bias", kvd));
      qkv_bias.insert(qkv_bias.end(), bk.begin(), bk.end());
      qkv_bias.insert(qkv_bias.end(), bv.begin(), bv.end());
    }
    ASSIGN_OR_RETURN(
        layer.qkv,
        MakeLinear(f, {WholeMatrix(wq), WholeMatrix(wk), WholeMatrix(wv)},
                   std::move(qkv_bias), mode));
    ASSIGN_OR_RETURN(const GgufTensorInfo* wo,
                     FindWeight(f, p + "attn_output.weight", {qd, d}));
    ASSIGN_OR_RETURN(layer.wo, MakeLinear(f, {WholeMatrix(wo)}, {}, mode));
    if (c.moe()) {
      ASSIGN_OR_RETURN(layer.moe, LoadMoeFfn(f, c, p, mode, T));
      m->resident_.ffn += layer.moe->resident_bytes();
    } else {
      RETURN_IF_ERROR(LoadDenseFfn(f, c, p, mode, &layer.gate_up, &layer.down));
      m->resident_.ffn +=
          layer.gate_up->resident_bytes() + layer.down->resident_bytes();
    }
    m->resident_.attention +=
        layer.qkv->resident_bytes() + layer.wo->resident_bytes();
    m->resident_.norms += (layer.attn_norm.size() + layer.ffn_norm.size()) * 4;
    m->layers_.push_back(std::move(layer));
  }

  m->int8_ = m->output_->format() != kernels::WeightFormat::kF32;
  for (const Layer& layer : m->layers_) {
    for (const Linear* lin : layer.matrices())
      m->int8_ |= lin->format() != kernels::WeightFormat::kF32;
    if (layer.moe) m->int8_ |= mode == WeightMode::kInt8;
  }
  RETURN_IF_ERROR(m->AllocateBuffers());
  if (options.measure_crossover) {
    // Every layer has the same shapes: measure the first layer's matrices
    // and the output head, and share the result.
    Layer& first = m->layers_[0];
    for (Linear* lin : first.matrices()) {
      lin->MeasureKernelChoice(&m->scratch_);
      for (Layer& layer : m->layers_) {
        for (Linear* other : layer.matrices()) {
          if (other != lin && other->rows() == lin->rows() &&
              other->cols() == lin->cols()) {
            other->CopyKernelChoice(*lin);
          }
        }
      }
    }
    if (first.moe) {
      first.moe->MeasureKernelChoice(&m->scratch_);
      for (Layer& layer : m->layers_) layer.moe->CopyKernelChoice(*first.moe);
    }
    m->output_->MeasureKernelChoice(&m->scratch_);
  }
  return m;
}

std::vector<Linear*> Transformer::Layer::matrices() const {
  std::vector<Linear*> m = {qkv.get(), wo.get()};
  if (gate_up) m.insert(m.end(), {gate_up.get(), down.get()});
  return m;
}

absl::Status Transformer::AllocateBuffers() {
  const ModelConfig& c = config_;
  const int64_t T = options_.max_batch_tokens;
  const int64_t widest_ff = std::max({c.n_ff, c.n_ff_expert, c.n_ff_shared});
  x_.assign(T * c.n_embd, 0.0f);
  xn_.assign(T * std::max(c.n_embd, c.q_dim()), 0.0f);
  qkv_.assign(T * (c.q_dim() + 2 * c.kv_dim()), 0.0f);
  attn_.assign(T * c.q_dim(), 0.0f);
  proj_.assign(T * c.n_embd, 0.0f);
  if (!c.moe()) {
    gate_up_.assign(T * 2 * c.n_ff, 0.0f);
    hidden_.assign(T * c.n_ff, 0.0f);
  }
  positions_.assign(T, 0);
  rope_cos_.assign(T * c.rope_dim / 2, 0.0f);
  rope_sin_.assign(T * c.rope_dim / 2, 0.0f);
  queries_.assign(T, {});
  logit_rows_.assign(T, 0);
  lora_runs_.reserve(T);
  lora_scratch_.assign(T * kMaxLoraRank, 0.0f);
  attn_scratch_.assign(options_.num_threads * options_.max_context, 0.0f);
  // Dequantized int8 weights for oneDNN: the largest layer matrix (the
  // output head stays on the small-M kernel when it does not fit).
  int64_t max_weights = 0;
  for (const Layer& l : layers_) {
    for (const Linear* lin : l.matrices()) {
      if (lin->format() == kernels::WeightFormat::kInt8)
        max_weights = std::max(max_weights, lin->rows() * lin->cols());
    }
    if (l.moe && int8_)
      max_weights = std::max(max_weights, l.moe->max_weight_elements());
  }
  scratch_.Reserve(std::max<int64_t>(T, 256),
                   std::max({c.n_embd, c.q_dim(), widest_ff}), max_weights,
                   options_.num_threads);
  return absl::OkStatus();
}

int64_t Transformer::weight_bytes_per_step() const {
  int64_t bytes = output_->resident_bytes();
  for (const Layer& l : layers_) {
    for (const Linear* lin : l.matrices()) bytes += lin->resident_bytes();
    if (l.moe) bytes += l.moe->active_bytes_per_token();
  }
  return bytes;
}

int64_t Transformer::matmul_macs_per_token() const {
  int64_t macs = output_->rows() * output_->cols();
  for (const Layer& l : layers_) {
    for (const Linear* lin : l.matrices()) macs += lin->rows() * lin->cols();
    if (l.moe) macs += l.moe->active_macs_per_token();
  }
  return macs;
}

std::string Transformer::WeightsSummary() const {
  std::map<std::string, int> counts;
  counts[output_->TypeSummary()]++;
  for (const Layer& l : layers_) {
    for (const Linear* lin : l.matrices()) counts[lin->TypeSummary()]++;
  }
  std::string s;
  for (const auto& [format, n] : counts)
    absl::StrAppend(&s, s.empty() ? "" : ", ", format, " ", n);
  return s;
}

void Transformer::EmbeddingRow(int32_t token, float* out) const {
  const int64_t d = config_.n_embd;
  if (token_embd_.shared != nullptr) {
    token_embd_.shared->DequantizeRow(token, out);
  } else if (!token_embd_.packed.empty()) {
    quant::FindQuantType(token_embd_.type)
        ->dequantize_row(
            token_embd_.packed.data() + token * token_embd_.row_bytes, out, d);
  } else {
    std::memcpy(out, &token_embd_.f32[token * d], d * sizeof(float));
  }
}

std::string Transformer::KernelChoiceSummary() const {
  const Layer& l = layers_[0];
  std::string s = absl::StrCat("qkv ", l.qkv->KernelChoiceSummary(), "; wo ",
                               l.wo->KernelChoiceSummary());
  if (l.gate_up) {
    absl::StrAppend(&s, "; gate_up ", l.gate_up->KernelChoiceSummary(),
                    "; down ", l.down->KernelChoiceSummary());
  }
  absl::StrAppend(&s, "; output ", output_->KernelChoiceSummary());
  return s;
}

void Transformer::ExpertTokenCounts(std::vector<int64_t>* counts) const {
  counts->clear();
  if (!config_.moe()) return;
  for (const Layer& l : layers_) {
    for (int64_t e = 0; e < config_.n_experts; ++e)
      counts->push_back(l.moe->expert_tokens(e));
  }
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

absl::Status Transformer::Forward(const Batch& batch, KvCache* cache,
                                  std::span<float> logits) {
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  if (n == 0) return absl::OkStatus();
  if (n > options_.max_batch_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", n, " tokens exceeds max_batch_tokens ",
                     options_.max_batch_tokens));
  }
  const int64_t bs = cache->shape().block_size;
  int64_t t = 0, n_logits = 0;
  lora_runs_.clear();
  for (const BatchSequence& s : batch.sequences) {
    const int64_t end = static_cast<int64_t>(s.start_position) + s.num_tokens;
    if (s.num_tokens <= 0 || s.start_position < 0 ||
        end > options_.max_context) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence positions [", s.start_position, ", ", end,
                       ") outside the context of ", options_.max_context));
    }
    if (static_cast<int64_t>(s.block_table.size()) * bs < end) {
      return absl::InvalidArgumentError(
          absl::StrCat("block table of ", s.block_table.size(),
                       " blocks cannot hold ", end, " positions"));
    }
    for (int32_t block : s.block_table) {
      if (block < 0 || block >= cache->shape().num_blocks) {
        return absl::InvalidArgumentError(
            absl::StrCat("KV block id ", block, " out of range"));
      }
    }
    if (t + s.num_tokens > n) break;
    if (s.adapter != nullptr) {
      if (!lora_runs_.empty() && lora_runs_.back().adapter == s.adapter &&
          lora_runs_.back().first_row + lora_runs_.back().rows == t) {
        lora_runs_.back().rows += s.num_tokens;
      } else {
        lora_runs_.push_back({t, s.num_tokens, s.adapter});
      }
    }
    for (int32_t i = 0; i < s.num_tokens; ++i, ++t) {
      positions_[t] = s.start_position + i;
      queries_[t] = {s.start_position + i, s.block_table.data()};
    }
    if (s.want_logits) logit_rows_[n_logits++] = t - 1;
  }
  if (t != n) {
    return absl::InvalidArgumentError(
        "sequence token counts do not add up to the batch size");
  }
  if (static_cast<int64_t>(logits.size()) < n_logits * c.n_vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("logits of ", logits.size(), " floats cannot hold ",
                     n_logits, " rows of ", c.n_vocab));
  }
  for (int64_t i = 0; i < n; ++i) {
    const int32_t tok = batch.tokens[i];
    if (tok < 0 || tok >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token id ", tok, " outside the vocabulary of ", c.n_vocab));
    }
    EmbeddingRow(tok, &x_[i * c.n_embd]);
  }

  const int64_t d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim;
  const int64_t qkv_dim = qd + 2 * kvd;
  const kernels::AttentionShape shape{c.n_heads, c.n_kv_heads, hd,
                                      1.0f / std::sqrt(static_cast<float>(hd))};
  const float eps = static_cast<float>(c.norm_eps);
  using Clock = std::chrono::steady_clock;
  auto mark = Clock::now();
  // Charges the time since the last mark to one phase.
  auto charge = [&](double* phase) {
    const auto now = Clock::now();
    *phase += std::chrono::duration<double>(now - mark).count();
    mark = now;
  };
  ++profile_.steps;
  kernels::RopeAngles(
      positions_.data(), n, c.rope_dim, static_cast<float>(c.rope_base),
      static_cast<float>(c.rope_scale), rope_cos_.data(), rope_sin_.data());
  for (int64_t l = 0; l < c.n_layers; ++l) {
    Layer& layer = layers_[l];
    // Attention block.
    kernels::RmsNorm(x_.data(), layer.attn_norm.data(), n, d, eps, xn_.data());
    charge(&profile_.other);
    RETURN_IF_ERROR(layer.qkv->Forward(xn_.data(), n, qkv_.data(), &scratch_));
    if (!lora_runs_.empty()) {
      ApplyLora(l, LoraTarget::kQ, xn_.data(), d, qkv_.data(), qkv_dim);
      ApplyLora(l, LoraTarget::kK, xn_.data(), d, qkv_.data() + qd, qkv_dim);
      ApplyLora(l, LoraTarget::kV, xn_.data(), d, qkv_.data() + qd + kvd,
                qkv_dim);
    }
    charge(&profile_.matmul);
    kernels::Rope(qkv_.data(), qkv_dim, rope_cos_.data(), rope_sin_.data(), n,
                  c.n_heads, hd, c.rope_dim, rope_style_);
    kernels::Rope(qkv_.data() + qd, qkv_dim, rope_cos_.data(), rope_sin_.data(),
                  n, c.n_kv_heads, hd, c.rope_dim, rope_style_);
    charge(&profile_.other);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t pos = positions_[i];
      const int32_t block = queries_[i].block_table[pos / bs];
      const int64_t slot = pos % bs;
      const float* k = &qkv_[i * qkv_dim + qd];
      const float* v = k + kvd;
      float* kc = cache->Keys(block, l);
      float* vc = cache->Values(block, l);
      for (int64_t h = 0; h < c.n_kv_heads; ++h) {
        std::memcpy(kc + (h * bs + slot) * hd, k + h * hd, hd * sizeof(float));
        std::memcpy(vc + (h * bs + slot) * hd, v + h * hd, hd * sizeof(float));
      }
    }
    kernels::PagedAttention(qkv_.data(), qkv_dim, queries_.data(), n, *cache, l,
                            shape, attn_scratch_.data(), options_.num_threads,
                            options_.max_context, attn_.data());
    charge(&profile_.attention);
    RETURN_IF_ERROR(
        layer.wo->Forward(attn_.data(), n, proj_.data(), &scratch_));
    if (!lora_runs_.empty())
      ApplyLora(l, LoraTarget::kO, attn_.data(), qd, proj_.data(), d);
    charge(&profile_.matmul);
    kernels::AddInPlace(x_.data(), proj_.data(), n * d);
    // Feed-forward block (SwiGLU, dense or mixture of experts).
    kernels::RmsNorm(x_.data(), layer.ffn_norm.data(), n, d, eps, xn_.data());
    charge(&profile_.other);
    if (layer.moe) {
      RETURN_IF_ERROR(
          layer.moe->Forward(xn_.data(), n, proj_.data(), &scratch_));
      charge(&profile_.matmul);
    } else {
      const int64_t ff = c.n_ff;
      RETURN_IF_ERROR(
          layer.gate_up->Forward(xn_.data(), n, gate_up_.data(), &scratch_));
      if (!lora_runs_.empty()) {
        ApplyLora(l, LoraTarget::kGate, xn_.data(), d, gate_up_.data(), 2 * ff);
        ApplyLora(l, LoraTarget::kUp, xn_.data(), d, gate_up_.data() + ff,
                  2 * ff);
      }
      charge(&profile_.matmul);
      kernels::SiluMul(gate_up_.data(), n, ff, hidden_.data());
      charge(&profile_.other);
      RETURN_IF_ERROR(
          layer.down->Forward(hidden_.data(), n, proj_.data(), &scratch_));
      if (!lora_runs_.empty())
        ApplyLora(l, LoraTarget::kDown, hidden_.data(), ff, proj_.data(), d);
      charge(&profile_.matmul);
    }
    kernels::AddInPlace(x_.data(), proj_.data(), n * d);
  }
  // Only the rows that will be sampled go through the final norm and head.
  for (int64_t r = 0; r < n_logits; ++r) {
    kernels::RmsNorm(&x_[logit_rows_[r] * d], output_norm_.data(), 1, d, eps,
                     &xn_[r * d]);
  }
  charge(&profile_.other);
  RETURN_IF_ERROR(
      output_->Forward(xn_.data(), n_logits, logits.data(), &scratch_));
  charge(&profile_.matmul);
  return absl::OkStatus();
}

}  // namespace lumen::engine
