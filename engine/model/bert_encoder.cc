#include "engine/model/bert_encoder.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/tensor_convert.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/vec_exp.h"

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

// x[r] = (x[r] - mean) / sqrt(var + eps) * w + b for every row (threaded:
// rows are independent).
void LayerNorm(float* x, const float* w, const float* b, int64_t rows,
               int64_t dim, float eps) {
#pragma omp parallel for schedule(static) if (rows >= 64)
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * dim;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mean += v[i];
    mean /= dim;
    for (int64_t i = 0; i < dim; ++i) var += (v[i] - mean) * (v[i] - mean);
    const float inv = 1.0f / std::sqrt(static_cast<float>(var / dim) + eps);
    const float m = static_cast<float>(mean);
    for (int64_t i = 0; i < dim; ++i) v[i] = (v[i] - m) * inv * w[i] + b[i];
  }
}

// erf for 8 floats: Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7),
// erf(-x) = -erf(x).
inline __m256 Erf256(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);  // |x|
  const __m256 t = _mm256_div_ps(
      _mm256_set1_ps(1.0f),
      _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 e =
      kernels::Exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
  const __m256 y = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
  return _mm256_or_ps(y, sign);
}

// v = 0.5 v (1 + erf(v / sqrt(2))) in place ([n]; threaded for big batches).
void Gelu(float* v, int64_t n) {
  const int64_t blocks = n / 8;
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
  for (int64_t b = 0; b < blocks; ++b) {
    const __m256 x = _mm256_loadu_ps(v + b * 8);
    const __m256 erf = Erf256(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678f)));
    const __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                                   _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
    _mm256_storeu_ps(v + b * 8, y);
  }
  for (int64_t i = blocks * 8; i < n; ++i)
    v[i] = 0.5f * v[i] * (1.0f + std::erf(v[i] * 0.70710678f));
}

// scores[i] = exp(scores[i] - max); returns their sum. [n]
float ExpShiftSum(float* scores, int64_t n, float max) {
  const __m256 m = _mm256_set1_ps(max);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e =
        kernels::Exp256(_mm256_sub_ps(_mm256_loadu_ps(scores + i), m));
    _mm256_storeu_ps(scores + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float sum = 0;
  for (float l : lanes) sum += l;
  for (; i < n; ++i) sum += (scores[i] = std::exp(scores[i] - max));
  return sum;
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
  return m;
}

void BertEncoder::Reserve(int64_t tokens) {
  // Per thread of this thread's team: scores [n_ctx] and transposed keys
  // [head_dim, n_ctx].
  const int threads = std::max(1, omp_get_max_threads());
  const size_t per_thread = n_ctx_ + (dim_ / n_heads_) * n_ctx_;
  if (scores_.size() < threads * per_thread)
    scores_.resize(threads * per_thread);
  if (tokens <= reserved_tokens_) return;
  reserved_tokens_ = tokens;
  x_.resize(tokens * dim_);
  qkv_.resize(tokens * 3 * dim_);
  att_.resize(tokens * dim_);
  tmp_.resize(tokens * dim_);
  ff_.resize(tokens * n_ff_);
  scratch_.Reserve(tokens, std::max(dim_, n_ff_), 0);
}

void BertEncoder::Attention(const std::vector<int64_t>& starts, int64_t total) {
  const int64_t d = dim_, hd = dim_ / n_heads_;
  const int64_t n_seqs = static_cast<int64_t>(starts.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t per_thread = n_ctx_ + hd * n_ctx_;
  // One task per (sequence, head): attention never crosses sequences.
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < n_seqs * n_heads_; ++task) {
    const int64_t s = task / n_heads_, h = task % n_heads_;
    const int64_t begin = starts[s];
    const int64_t n = (s + 1 < n_seqs ? starts[s + 1] : total) - begin;
    float* scores = &scores_[omp_get_thread_num() * per_thread];  // [n]
    float* keys_t = scores + n_ctx_;  // [hd, n]: this head's keys transposed
    const float* k0 = &qkv_[begin * 3 * d + d + h * hd];
    const float* v0 = &qkv_[begin * 3 * d + 2 * d + h * hd];
    for (int64_t u = 0; u < n; ++u) {
      for (int64_t i = 0; i < hd; ++i) keys_t[i * n + u] = k0[u * 3 * d + i];
    }
    for (int64_t t = begin; t < begin + n; ++t) {
      const float* q = &qkv_[t * 3 * d + h * hd];
      // scores[u] = q . k_u, eight keys at a time from the transposed keys.
      int64_t u = 0;
      for (; u + 8 <= n; u += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < hd; ++i) {
          acc = _mm256_fmadd_ps(_mm256_set1_ps(q[i]),
                                _mm256_loadu_ps(&keys_t[i * n + u]), acc);
        }
        _mm256_storeu_ps(&scores[u], acc);
      }
      for (; u < n; ++u) {
        float acc = 0;
        for (int64_t i = 0; i < hd; ++i) acc += q[i] * keys_t[i * n + u];
        scores[u] = acc;
      }
      float mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, scores[j] *= scale);
      const float inv = 1.0f / ExpShiftSum(scores, n, mx);
      // o = sum_u p_u v_u, the output row held in registers (hd <= 128).
      float* o = &att_[t * d + h * hd];
      if (hd % 8 == 0 && hd <= 128) {
        __m256 acc[16];
        const int64_t lanes = hd / 8;
        for (int64_t l = 0; l < lanes; ++l) acc[l] = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; ++j) {
          const __m256 p = _mm256_set1_ps(scores[j] * inv);
          const float* v = v0 + j * 3 * d;
          for (int64_t l = 0; l < lanes; ++l)
            acc[l] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * l), acc[l]);
        }
        for (int64_t l = 0; l < lanes; ++l) _mm256_storeu_ps(o + 8 * l, acc[l]);
      } else {
        std::memset(o, 0, hd * sizeof(float));
        for (int64_t j = 0; j < n; ++j)
          kernels::Axpy(scores[j] * inv, v0 + j * 3 * d, o, hd);
      }
    }
  }
}

absl::Status BertEncoder::EncodePass(
    const std::vector<std::vector<int32_t>>& sequences, size_t first,
    size_t last, std::vector<std::vector<float>>* out) {
  const int64_t d = dim_;
  std::vector<int64_t> starts;  // [sequences] first row of each
  int64_t total = 0;
  for (size_t s = first; s < last; ++s) {
    starts.push_back(total);
    total += std::min<int64_t>(sequences[s].size(), n_ctx_);
  }
  Reserve(total);
  for (size_t s = first; s < last; ++s) {
    const int64_t begin = starts[s - first];
    const int64_t n = std::min<int64_t>(sequences[s].size(), n_ctx_);
    for (int64_t t = 0; t < n; ++t) {
      const int32_t tok = sequences[s][t];
      float* x = &x_[(begin + t) * d];
      for (int64_t i = 0; i < d; ++i)
        x[i] = tok_emb_[tok * d + i] + pos_emb_[t * d + i] + type_emb_[i];
    }
  }
  LayerNorm(x_.data(), emb_norm_w_.data(), emb_norm_b_.data(), total, d, eps_);
  for (Layer& layer : layers_) {
    RETURN_IF_ERROR(
        layer.qkv->Forward(x_.data(), total, qkv_.data(), &scratch_));
    Attention(starts, total);
    RETURN_IF_ERROR(
        layer.out->Forward(att_.data(), total, tmp_.data(), &scratch_));
    kernels::AddInPlace(x_.data(), tmp_.data(), total * d);
    LayerNorm(x_.data(), layer.attn_norm_w.data(), layer.attn_norm_b.data(),
              total, d, eps_);
    RETURN_IF_ERROR(layer.up->Forward(x_.data(), total, ff_.data(), &scratch_));
    Gelu(ff_.data(), total * n_ff_);
    RETURN_IF_ERROR(
        layer.down->Forward(ff_.data(), total, tmp_.data(), &scratch_));
    kernels::AddInPlace(x_.data(), tmp_.data(), total * d);
    LayerNorm(x_.data(), layer.out_norm_w.data(), layer.out_norm_b.data(),
              total, d, eps_);
  }
  for (size_t s = first; s < last; ++s) {
    const int64_t begin = starts[s - first];
    const int64_t n = std::min<int64_t>(sequences[s].size(), n_ctx_);
    std::vector<float> e(d, 0.0f);  // [dim]
    if (mean_pooling_) {
      for (int64_t t = 0; t < n; ++t)
        kernels::AddInPlace(e.data(), &x_[(begin + t) * d], d);
      for (float& v : e) v /= static_cast<float>(n);
    } else {
      std::copy(&x_[begin * d], &x_[begin * d] + d, e.begin());
    }
    double ss = 0;
    for (float v : e) ss += static_cast<double>(v) * v;
    const float inv = ss > 0 ? static_cast<float>(1.0 / std::sqrt(ss)) : 0.0f;
    for (float& v : e) v *= inv;
    (*out)[s] = std::move(e);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<float>>> BertEncoder::Embed(
    const std::vector<std::vector<int32_t>>& sequences) {
  for (size_t s = 0; s < sequences.size(); ++s) {
    if (sequences[s].empty()) {
      return absl::InvalidArgumentError("cannot embed an empty token sequence");
    }
    const int64_t n = std::min<int64_t>(sequences[s].size(), n_ctx_);
    for (int64_t t = 0; t < n; ++t) {
      const int32_t tok = sequences[s][t];
      if (tok < 0 || tok >= n_vocab_) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", tok, " outside the vocabulary"));
      }
    }
  }
  std::vector<std::vector<float>> out(sequences.size());
  size_t first = 0;
  while (first < sequences.size()) {
    // As many whole sequences as fit the pass budget (at least one).
    size_t last = first;
    int64_t tokens = 0;
    while (last < sequences.size()) {
      const int64_t n = std::min<int64_t>(sequences[last].size(), n_ctx_);
      if (last > first && tokens + n > max_pass_tokens_) break;
      tokens += n;
      ++last;
    }
    RETURN_IF_ERROR(EncodePass(sequences, first, last, &out));
    first = last;
  }
  return out;
}

}  // namespace lumen::engine
