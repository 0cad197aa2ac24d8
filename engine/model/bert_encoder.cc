#include "engine/model/bert_encoder.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/tensor_convert.h"
#include "engine/kernels/cpu_ops.h"

namespace lumen::engine {

namespace {

absl::StatusOr<std::vector<float>> Tensor(const GgufFile& f,
                                          const std::string& name,
                                          std::vector<int64_t> dims) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " is missing"));
  if (t->dims != dims) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " has an unexpected shape"));
  }
  std::vector<float> out(t->num_elements);
  RETURN_IF_ERROR(DecodeToFloat(t->type, f.TensorData(*t).data(),
                                t->num_elements, out.data()));
  return out;
}

void LayerNorm(float* x, const float* w, const float* b, int64_t rows,
               int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * dim;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mean += v[i];
    mean /= dim;
    for (int64_t i = 0; i < dim; ++i) var += (v[i] - mean) * (v[i] - mean);
    const float inv = 1.0f / std::sqrt(static_cast<float>(var / dim) + eps);
    for (int64_t i = 0; i < dim; ++i)
      v[i] = (v[i] - static_cast<float>(mean)) * inv * w[i] + b[i];
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<BertEncoder>> BertEncoder::Load(
    const GgufFile& f) {
  ASSIGN_OR_RETURN(absl::string_view arch, f.GetString("general.architecture"));
  if (arch != "bert") {
    return absl::InvalidArgumentError(absl::StrCat(
        "embedding model architecture is '", arch, "', expected bert"));
  }
  std::unique_ptr<BertEncoder> m(new BertEncoder());
  ASSIGN_OR_RETURN(m->dim_, f.GetInt("bert.embedding_length"));
  ASSIGN_OR_RETURN(m->n_layers_, f.GetInt("bert.block_count"));
  ASSIGN_OR_RETURN(m->n_heads_, f.GetInt("bert.attention.head_count"));
  ASSIGN_OR_RETURN(m->n_ff_, f.GetInt("bert.feed_forward_length"));
  ASSIGN_OR_RETURN(m->n_ctx_, f.GetIntOr("bert.context_length", 512));
  ASSIGN_OR_RETURN(double eps,
                   f.GetFloatOr("bert.attention.layer_norm_epsilon", 1e-12));
  m->eps_ = static_cast<float>(eps);
  ASSIGN_OR_RETURN(int64_t pooling, f.GetIntOr("bert.pooling_type", 1));
  if (pooling != 1 && pooling != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bert.pooling_type ", pooling, " is not supported (1 mean, 2 cls)"));
  }
  m->mean_pooling_ = pooling == 1;
  if (m->dim_ <= 0 || m->n_heads_ <= 0 || m->dim_ % m->n_heads_ != 0 ||
      m->n_layers_ <= 0) {
    return absl::InvalidArgumentError(
        "bert: bad embedding_length/head_count/block_count");
  }
  const GgufTensorInfo* te = f.FindTensor("token_embd.weight");
  if (te == nullptr || te->dims.size() != 2) {
    return absl::InvalidArgumentError("tensor token_embd.weight is missing");
  }
  m->n_vocab_ = te->dims[1];
  const int64_t d = m->dim_;
  ASSIGN_OR_RETURN(m->tok_emb_,
                   Tensor(f, "token_embd.weight", {d, m->n_vocab_}));
  ASSIGN_OR_RETURN(m->pos_emb_,
                   Tensor(f, "position_embd.weight", {d, m->n_ctx_}));
  const GgufTensorInfo* types = f.FindTensor("token_types.weight");
  if (types == nullptr)
    return absl::InvalidArgumentError("tensor token_types.weight is missing");
  ASSIGN_OR_RETURN(m->type_emb_, Tensor(f, "token_types.weight", types->dims));
  ASSIGN_OR_RETURN(m->emb_norm_w_, Tensor(f, "token_embd_norm.weight", {d}));
  ASSIGN_OR_RETURN(m->emb_norm_b_, Tensor(f, "token_embd_norm.bias", {d}));
  for (int64_t l = 0; l < m->n_layers_; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    Layer layer;
    std::vector<float> qkv, qkv_b;
    for (const char* n : {"attn_q", "attn_k", "attn_v"}) {
      ASSIGN_OR_RETURN(auto w, Tensor(f, p + n + ".weight", {d, d}));
      ASSIGN_OR_RETURN(auto b, Tensor(f, p + n + ".bias", {d}));
      qkv.insert(qkv.end(), w.begin(), w.end());
      qkv_b.insert(qkv_b.end(), b.begin(), b.end());
    }
    ASSIGN_OR_RETURN(
        layer.qkv,
        kernels::Linear::CreateF32(3 * d, d, std::move(qkv), std::move(qkv_b)));
    ASSIGN_OR_RETURN(auto wo, Tensor(f, p + "attn_output.weight", {d, d}));
    ASSIGN_OR_RETURN(auto bo, Tensor(f, p + "attn_output.bias", {d}));
    ASSIGN_OR_RETURN(layer.out, kernels::Linear::CreateF32(d, d, std::move(wo),
                                                           std::move(bo)));
    ASSIGN_OR_RETURN(auto wu, Tensor(f, p + "ffn_up.weight", {d, m->n_ff_}));
    ASSIGN_OR_RETURN(auto bu, Tensor(f, p + "ffn_up.bias", {m->n_ff_}));
    ASSIGN_OR_RETURN(layer.up, kernels::Linear::CreateF32(
                                   m->n_ff_, d, std::move(wu), std::move(bu)));
    ASSIGN_OR_RETURN(auto wd, Tensor(f, p + "ffn_down.weight", {m->n_ff_, d}));
    ASSIGN_OR_RETURN(auto bd, Tensor(f, p + "ffn_down.bias", {d}));
    ASSIGN_OR_RETURN(
        layer.down,
        kernels::Linear::CreateF32(d, m->n_ff_, std::move(wd), std::move(bd)));
    ASSIGN_OR_RETURN(layer.attn_norm_w,
                     Tensor(f, p + "attn_output_norm.weight", {d}));
    ASSIGN_OR_RETURN(layer.attn_norm_b,
                     Tensor(f, p + "attn_output_norm.bias", {d}));
    ASSIGN_OR_RETURN(layer.out_norm_w,
                     Tensor(f, p + "layer_output_norm.weight", {d}));
    ASSIGN_OR_RETURN(layer.out_norm_b,
                     Tensor(f, p + "layer_output_norm.bias", {d}));
    m->layers_.push_back(std::move(layer));
  }
  m->scratch_.Reserve(m->n_ctx_, std::max(d, m->n_ff_), 0);
  return m;
}

absl::StatusOr<std::vector<std::vector<float>>> BertEncoder::Embed(
    const std::vector<std::vector<int32_t>>& sequences) {
  std::vector<std::vector<float>> out;
  const int64_t d = dim_, hd = dim_ / n_heads_;
  for (const std::vector<int32_t>& seq_in : sequences) {
    // Sequences run one at a time: attention is per sequence and the batch
    // rows of one sequence already fill the matrix kernels.
    const int64_t n = std::min<int64_t>(seq_in.size(), n_ctx_);
    if (n == 0)
      return absl::InvalidArgumentError("cannot embed an empty token sequence");
    std::vector<float> x(n * d), qkv(n * 3 * d), att(n * d), tmp(n * d),
        ff(n * n_ff_);
    for (int64_t t = 0; t < n; ++t) {
      const int32_t tok = seq_in[t];
      if (tok < 0 || tok >= n_vocab_) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", tok, " outside the vocabulary"));
      }
      for (int64_t i = 0; i < d; ++i) {
        x[t * d + i] =
            tok_emb_[tok * d + i] + pos_emb_[t * d + i] + type_emb_[i];
      }
    }
    LayerNorm(x.data(), emb_norm_w_.data(), emb_norm_b_.data(), n, d, eps_);
    std::vector<float> scores(n);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (Layer& layer : layers_) {
      RETURN_IF_ERROR(layer.qkv->Forward(x.data(), n, qkv.data(), &scratch_));
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t h = 0; h < n_heads_; ++h) {
          const float* q = &qkv[t * 3 * d + h * hd];
          float mx = -INFINITY;
          for (int64_t u = 0; u < n; ++u) {
            scores[u] =
                kernels::Dot(q, &qkv[u * 3 * d + d + h * hd], hd) * scale;
            mx = std::max(mx, scores[u]);
          }
          float sum = 0;
          for (int64_t u = 0; u < n; ++u)
            sum += (scores[u] = std::exp(scores[u] - mx));
          float* o = &att[t * d + h * hd];
          std::memset(o, 0, hd * sizeof(float));
          for (int64_t u = 0; u < n; ++u) {
            kernels::Axpy(scores[u] / sum, &qkv[u * 3 * d + 2 * d + h * hd], o,
                          hd);
          }
        }
      }
      RETURN_IF_ERROR(layer.out->Forward(att.data(), n, tmp.data(), &scratch_));
      kernels::AddInPlace(x.data(), tmp.data(), n * d);
      LayerNorm(x.data(), layer.attn_norm_w.data(), layer.attn_norm_b.data(), n,
                d, eps_);
      RETURN_IF_ERROR(layer.up->Forward(x.data(), n, ff.data(), &scratch_));
      for (float& v : ff) v = 0.5f * v * (1.0f + std::erf(v * 0.70710678f));
      RETURN_IF_ERROR(layer.down->Forward(ff.data(), n, tmp.data(), &scratch_));
      kernels::AddInPlace(x.data(), tmp.data(), n * d);
      LayerNorm(x.data(), layer.out_norm_w.data(), layer.out_norm_b.data(), n,
                d, eps_);
    }
    std::vector<float> e(d, 0.0f);
    if (mean_pooling_) {
      for (int64_t t = 0; t < n; ++t)
        kernels::AddInPlace(e.data(), &x[t * d], d);
      for (float& v : e) v /= static_cast<float>(n);
    } else {
      std::copy(x.begin(), x.begin() + d, e.begin());
    }
    double ss = 0;
    for (float v : e) ss += static_cast<double>(v) * v;
    const float inv = ss > 0 ? static_cast<float>(1.0 / std::sqrt(ss)) : 0.0f;
    for (float& v : e) v *= inv;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace lumen::engine
