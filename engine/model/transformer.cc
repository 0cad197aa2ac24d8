#include "engine/model/transformer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/tensor_convert.h"
#include "engine/kernels/quantize.h"

namespace lumen::engine {

namespace {

using kernels::Linear;

bool LoadableType(GgmlType t) {
  return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16 ||
         t == GgmlType::kQ8_0;
}

// Finds a tensor and checks its type and shape ({cols, rows} in ggml order;
// rows 0 for vectors).
absl::StatusOr<const GgufTensorInfo*> Find(const GgufFile& f,
                                           const std::string& name,
                                           int64_t cols, int64_t rows) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " is missing"));
  if (!LoadableType(t->type)) {
    return absl::UnimplementedError(
        absl::StrCat("tensor ", name, " has type ", GgmlTypeName(t->type),
                     "; supported types: f32, f16, bf16, q8_0"));
  }
  const std::vector<int64_t> want =
      rows > 0 ? std::vector<int64_t>{cols, rows} : std::vector<int64_t>{cols};
  if (t->dims != want) {
    std::string got;
    for (int64_t d : t->dims)
      absl::StrAppend(&got, got.empty() ? "" : " x ", d);
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " has shape [", got, "], expected [",
                     cols, rows > 0 ? absl::StrCat(" x ", rows) : "", "]"));
  }
  return t;
}

absl::StatusOr<std::vector<float>> ToFloat(const GgufFile& f,
                                           const GgufTensorInfo& t) {
  std::vector<float> out(t.num_elements);
  RETURN_IF_ERROR(DecodeToFloat(t.type, f.TensorData(t).data(), t.num_elements,
                                out.data()));
  return out;
}

absl::StatusOr<std::vector<float>> Vector(const GgufFile& f,
                                          const std::string& name, int64_t n) {
  ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(f, name, n, 0));
  return ToFloat(f, *t);
}

// Concatenates the rows of several [rows_i, cols] matrices into one Linear,
// int8 (32-blocks; Q8_0 blocks taken as they are) or fp32.
absl::StatusOr<std::unique_ptr<Linear>> MakeLinear(
    const GgufFile& f, const std::vector<const GgufTensorInfo*>& parts,
    std::vector<float> bias, bool int8) {
  const int64_t cols = parts[0]->dims[0];
  int64_t rows = 0;
  for (const GgufTensorInfo* p : parts) rows += p->dims[1];
  if (int8 && cols % kernels::kQBlock == 0) {
    std::vector<int8_t> q(rows * cols);
    std::vector<float> scales(rows * cols / kernels::kQBlock);
    int64_t row = 0;
    for (const GgufTensorInfo* p : parts) {
      const int64_t n = p->dims[1];
      const uint8_t* src = f.TensorData(*p).data();
      if (p->type == GgmlType::kQ8_0) {
        const int64_t blocks = n * cols / kQ8_0BlockSize;
        for (int64_t b = 0; b < blocks; ++b) {
          BlockQ8_0 block;
          std::memcpy(&block, src + b * sizeof(BlockQ8_0), sizeof(block));
          scales[row * cols / kernels::kQBlock + b] = HalfToFloat(block.scale);
          std::memcpy(q.data() + row * cols + b * kQ8_0BlockSize, block.q,
                      kQ8_0BlockSize);
          // Q8_0 may hold -128; clamp to keep vpmaddubsw's pair sums exact.
          for (int i = 0; i < kQ8_0BlockSize; ++i) {
            int8_t& v = q[row * cols + b * kQ8_0BlockSize + i];
            if (v == -128) v = -127;
          }
        }
      } else {
        ASSIGN_OR_RETURN(std::vector<float> w, ToFloat(f, *p));
        kernels::QuantizeRowsQ8(w.data(), n, cols, q.data() + row * cols,
                                scales.data() + row * cols / kernels::kQBlock);
      }
      row += n;
    }
    return Linear::CreateInt8(rows, cols, std::move(q), std::move(scales),
                              std::move(bias));
  }
  std::vector<float> w;
  w.reserve(rows * cols);
  for (const GgufTensorInfo* p : parts) {
    ASSIGN_OR_RETURN(std::vector<float> part, ToFloat(f, *p));
    w.insert(w.end(), part.begin(), part.end());
  }
  return Linear::CreateF32(rows, cols, std::move(w), std::move(bias));
}

}  // namespace

absl::StatusOr<WeightMode> ParseWeightMode(absl::string_view s) {
  if (s == "auto") return WeightMode::kAuto;
  if (s == "f32") return WeightMode::kF32;
  if (s == "int8") return WeightMode::kInt8;
  return absl::InvalidArgumentError(
      absl::StrCat("weights '", s, "' is not one of auto, f32, int8"));
}

absl::StatusOr<std::unique_ptr<Transformer>> Transformer::Load(
    const GgufFile& f, const TransformerOptions& options) {
  std::unique_ptr<Transformer> m(new Transformer());
  ASSIGN_OR_RETURN(m->config_, ModelConfig::FromGguf(f));
  const ModelConfig& c = m->config_;
  if (c.arch != "llama" && c.arch != "qwen2") {
    return absl::InvalidArgumentError(absl::StrCat(
        "architecture '", c.arch, "' is not supported (llama, qwen2)"));
  }
  if (c.n_experts > 0) {
    return absl::UnimplementedError(
        "mixture-of-experts models are not supported yet");
  }
  m->rope_style_ = c.arch == "qwen2" ? kernels::RopeStyle::kHalves
                                     : kernels::RopeStyle::kAdjacent;
  m->options_ = options;
  if (m->options_.max_context <= 0) m->options_.max_context = c.n_ctx_train;
  if (m->options_.max_batch_tokens <= 0) {
    return absl::InvalidArgumentError("max_batch_tokens must be positive");
  }

  bool any_q8 = false;
  for (const GgufTensorInfo& t : f.tensors())
    any_q8 |= t.type == GgmlType::kQ8_0;
  m->int8_ = options.weights == WeightMode::kInt8 ||
             (options.weights == WeightMode::kAuto && any_q8);

  const int64_t d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim();
  ASSIGN_OR_RETURN(const GgufTensorInfo* embd,
                   Find(f, "token_embd.weight", d, c.n_vocab));
  ASSIGN_OR_RETURN(m->token_embd_, ToFloat(f, *embd));
  m->resident_.embedding = m->token_embd_.size() * 4;
  ASSIGN_OR_RETURN(m->output_norm_, Vector(f, "output_norm.weight", d));
  const GgufTensorInfo* out = embd;
  if (!c.tied_output) {
    ASSIGN_OR_RETURN(out, Find(f, "output.weight", d, c.n_vocab));
  }
  ASSIGN_OR_RETURN(m->output_, MakeLinear(f, {out}, {}, m->int8_));
  m->resident_.output = m->output_->resident_bytes();
  m->resident_.norms = m->output_norm_.size() * 4;

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    Layer layer;
    ASSIGN_OR_RETURN(layer.attn_norm, Vector(f, p + "attn_norm.weight", d));
    ASSIGN_OR_RETURN(layer.ffn_norm, Vector(f, p + "ffn_norm.weight", d));
    ASSIGN_OR_RETURN(const GgufTensorInfo* wq,
                     Find(f, p + "attn_q.weight", d, qd));
    ASSIGN_OR_RETURN(const GgufTensorInfo* wk,
                     Find(f, p + "attn_k.weight", d, kvd));
    ASSIGN_OR_RETURN(const GgufTensorInfo* wv,
                     Find(f, p + "attn_v.weight", d, kvd));
    std::vector<float> qkv_bias;
    if (c.has_qkv_bias) {
      ASSIGN_OR_RETURN(std::vector<float> bq, Vector(f, p + "attn_q.bias", qd));
      ASSIGN_OR_RETURN(std::vector<float> bk,
                       Vector(f, p + "attn_k.bias", kvd));
      ASSIGN_OR_RETURN(std::vector<float> bv,
                       Vector(f, p + "attn_v.bias", kvd));
      qkv_bias = bq;
      qkv_bias.insert(qkv_bias.end(), bk.begin(), bk.end());
      qkv_bias.insert(qkv_bias.end(), bv.begin(), bv.end());
    }
    ASSIGN_OR_RETURN(
        layer.qkv, MakeLinear(f, {wq, wk, wv}, std::move(qkv_bias), m->int8_));
    ASSIGN_OR_RETURN(const GgufTensorInfo* wo,
                     Find(f, p + "attn_output.weight", qd, d));
    ASSIGN_OR_RETURN(layer.wo, MakeLinear(f, {wo}, {}, m->int8_));
    ASSIGN_OR_RETURN(const GgufTensorInfo* gate,
                     Find(f, p + "ffn_gate.weight", d, c.n_ff));
    ASSIGN_OR_RETURN(const GgufTensorInfo* up,
                     Find(f, p + "ffn_up.weight", d, c.n_ff));
    ASSIGN_OR_RETURN(layer.gate_up, MakeLinear(f, {gate, up}, {}, m->int8_));
    ASSIGN_OR_RETURN(const GgufTensorInfo* down,
                     Find(f, p + "ffn_down.weight", c.n_ff, d));
    ASSIGN_OR_RETURN(layer.down, MakeLinear(f, {down}, {}, m->int8_));
    m->resident_.attention +=
        layer.qkv->resident_bytes() + layer.wo->resident_bytes();
    m->resident_.ffn +=
        layer.gate_up->resident_bytes() + layer.down->resident_bytes();
    m->resident_.norms += (layer.attn_norm.size() + layer.ffn_norm.size()) * 4;
    m->layers_.push_back(std::move(layer));
  }

  RETURN_IF_ERROR(m->AllocateBuffers());
  if (options.measure_crossover) {
    // Every layer has the same shapes: measure the first layer's matrices
    // and the output head, and share the result.
    Layer& first = m->layers_[0];
    for (Linear* lin : {first.qkv.get(), first.wo.get(), first.gate_up.get(),
                        first.down.get()}) {
      lin->MeasureKernelChoice(&m->scratch_);
      for (Layer& layer : m->layers_) {
        for (Linear* other : {layer.qkv.get(), layer.wo.get(),
                              layer.gate_up.get(), layer.down.get()}) {
          if (other != lin && other->rows() == lin->rows() &&
              other->cols() == lin->cols()) {
            other->CopyKernelChoice(*lin);
          }
        }
      }
    }
    m->output_->MeasureKernelChoice(&m->scratch_);
  }
  return m;
}

absl::Status Transformer::AllocateBuffers() {
  const ModelConfig& c = config_;
  const int64_t T = options_.max_batch_tokens;
  x_.assign(T * c.n_embd, 0.0f);
  xn_.assign(T * std::max(c.n_embd, c.q_dim()), 0.0f);
  qkv_.assign(T * (c.q_dim() + 2 * c.kv_dim()), 0.0f);
  attn_.assign(T * c.q_dim(), 0.0f);
  proj_.assign(T * c.n_embd, 0.0f);
  gate_up_.assign(T * 2 * c.n_ff, 0.0f);
  hidden_.assign(T * c.n_ff, 0.0f);
  positions_.assign(T, 0);
  queries_.assign(T, {});
  logit_rows_.assign(T, 0);
  attn_scratch_.assign(omp_get_max_threads() * options_.max_context, 0.0f);
  // Dequantized int8 weights for oneDNN: the largest layer matrix (the
  // output head stays on the int8 kernel when it does not fit).
  int64_t max_weights = 0;
  if (int8_) {
    for (const Layer& l : layers_) {
      for (const Linear* lin :
           {l.qkv.get(), l.wo.get(), l.gate_up.get(), l.down.get()}) {
        max_weights = std::max(max_weights, lin->rows() * lin->cols());
      }
    }
  }
  scratch_.Reserve(std::max<int64_t>(T, 256),
                   std::max({c.n_embd, c.q_dim(), c.n_ff}), max_weights);
  return absl::OkStatus();
}

int64_t Transformer::weight_bytes_per_step() const {
  int64_t bytes = output_->resident_bytes();
  for (const Layer& l : layers_) {
    bytes += l.qkv->resident_bytes() + l.wo->resident_bytes() +
             l.gate_up->resident_bytes() + l.down->resident_bytes();
  }
  return bytes;
}

int64_t Transformer::matmul_macs_per_token() const {
  int64_t macs = output_->rows() * output_->cols();
  for (const Layer& l : layers_) {
    for (const Linear* lin :
         {l.qkv.get(), l.wo.get(), l.gate_up.get(), l.down.get()}) {
      macs += lin->rows() * lin->cols();
    }
  }
  return macs;
}

std::string Transformer::KernelChoiceSummary() const {
  const Layer& l = layers_[0];
  return absl::StrCat("qkv ", l.qkv->KernelChoiceSummary(), "; wo ",
                      l.wo->KernelChoiceSummary(), "; gate_up ",
                      l.gate_up->KernelChoiceSummary(), "; down ",
                      l.down->KernelChoiceSummary(), "; output ",
                      output_->KernelChoiceSummary());
}

absl::Status Transformer::Forward(const Batch& batch, KvCache* cache,
                                  float* logits) {
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
  for (int64_t i = 0; i < n; ++i) {
    const int32_t tok = batch.tokens[i];
    if (tok < 0 || tok >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token id ", tok, " outside the vocabulary of ", c.n_vocab));
    }
    std::memcpy(&x_[i * c.n_embd], &token_embd_[tok * c.n_embd],
                c.n_embd * sizeof(float));
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
  for (int64_t l = 0; l < c.n_layers; ++l) {
    Layer& layer = layers_[l];
    // Attention block.
    kernels::RmsNorm(x_.data(), layer.attn_norm.data(), n, d, eps, xn_.data());
    charge(&profile_.other);
    RETURN_IF_ERROR(layer.qkv->Forward(xn_.data(), n, qkv_.data(), &scratch_));
    charge(&profile_.matmul);
    kernels::Rope(qkv_.data(), qkv_dim, positions_.data(), n, c.n_heads, hd,
                  c.rope_dim, c.rope_base, c.rope_scale, rope_style_);
    kernels::Rope(qkv_.data() + qd, qkv_dim, positions_.data(), n, c.n_kv_heads,
                  hd, c.rope_dim, c.rope_base, c.rope_scale, rope_style_);
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
                            shape, attn_scratch_.data(), options_.max_context,
                            attn_.data());
    charge(&profile_.attention);
    RETURN_IF_ERROR(
        layer.wo->Forward(attn_.data(), n, proj_.data(), &scratch_));
    charge(&profile_.matmul);
    kernels::AddInPlace(x_.data(), proj_.data(), n * d);
    // Feed-forward block (SwiGLU).
    kernels::RmsNorm(x_.data(), layer.ffn_norm.data(), n, d, eps, xn_.data());
    charge(&profile_.other);
    RETURN_IF_ERROR(
        layer.gate_up->Forward(xn_.data(), n, gate_up_.data(), &scratch_));
    charge(&profile_.matmul);
    kernels::SiluMul(gate_up_.data(), n, c.n_ff, hidden_.data());
    charge(&profile_.other);
    RETURN_IF_ERROR(
        layer.down->Forward(hidden_.data(), n, proj_.data(), &scratch_));
    charge(&profile_.matmul);
    kernels::AddInPlace(x_.data(), proj_.data(), n * d);
  }
  // Only the rows that will be sampled go through the final norm and head.
  for (int64_t r = 0; r < n_logits; ++r) {
    kernels::RmsNorm(&x_[logit_rows_[r] * d], output_norm_.data(), 1, d, eps,
                     &xn_[r * d]);
  }
  charge(&profile_.other);
  RETURN_IF_ERROR(output_->Forward(xn_.data(), n_logits, logits, &scratch_));
  charge(&profile_.matmul);
  return absl::OkStatus();
}

}  // namespace lumen::engine
