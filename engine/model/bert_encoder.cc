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

void BertEncoder::Reserve(int64_t tokens, Workspace* ws) const {
  const int threads = std::max(1, omp_get_max_threads());
  const size_t hd = dim_ / n_heads_;
  const size_t per_thread = 3 * n_ctx_ * hd + n_ctx_ * n_ctx_;
  if (ws->heads.size() < threads * per_thread)
    ws->heads.resize(threads * per_thread);
  if (tokens <= ws->tokens) return;
  ws->tokens = tokens;
  ws->x.resize(tokens * dim_);
  ws->qkv.resize(tokens * 3 * dim_);
  ws->att.resize(tokens * dim_);
  ws->tmp.resize(tokens * dim_);
  ws->ff.resize(tokens * n_ff_);
  ws->linear.Reserve(tokens, std::max(dim_, n_ff_));
}

namespace {

// scores[t][u] = q[t] . kt[:, u] for t, u < n: q [n, hd], kt [hd, n],
// scores [n, n]. Blocks of 4 queries x 16 keys (8 independent accumulator
// chains, each key vector loaded once for four queries); the edges one by
// one.
void QueryKeyScores(const float* q, const float* kt, int64_t n, int64_t hd,
                    float* scores) {
  int64_t t = 0;
  for (; t + 4 <= n; t += 4) {
    int64_t u = 0;
    for (; u + 16 <= n; u += 16) {
      __m256 acc[4][2];
      for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
      for (int64_t i = 0; i < hd; ++i) {
        const __m256 k0 = _mm256_loadu_ps(kt + i * n + u);
        const __m256 k1 = _mm256_loadu_ps(kt + i * n + u + 8);
        for (int r = 0; r < 4; ++r) {
          const __m256 qi = _mm256_set1_ps(q[(t + r) * hd + i]);
          acc[r][0] = _mm256_fmadd_ps(qi, k0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(qi, k1, acc[r][1]);
        }
      }
      for (int r = 0; r < 4; ++r) {
        _mm256_storeu_ps(scores + (t + r) * n + u, acc[r][0]);
        _mm256_storeu_ps(scores + (t + r) * n + u + 8, acc[r][1]);
      }
    }
    for (; u < n; ++u) {
      for (int r = 0; r < 4; ++r) {
        float acc = 0;
        for (int64_t i = 0; i < hd; ++i)
          acc += q[(t + r) * hd + i] * kt[i * n + u];
        scores[(t + r) * n + u] = acc;
      }
    }
  }
  for (; t < n; ++t) {
    for (int64_t u = 0; u < n; ++u) {
      float acc = 0;
      for (int64_t i = 0; i < hd; ++i) acc += q[t * hd + i] * kt[i * n + u];
      scores[t * n + u] = acc;
    }
  }
}

// out[t] = sum_u p[t][u] v[u] for t < n: p [n, n], v [n, hd], out rows
// `out_stride` apart. Two query rows at a time with the output rows in
// registers (hd a multiple of 8, at most 64); otherwise row by row.
void WeightedValues(const float* p, const float* v, int64_t n, int64_t hd,
                    float* out, int64_t out_stride) {
  if (hd % 8 != 0 || hd > 64) {
    for (int64_t t = 0; t < n; ++t) {
      float* o = out + t * out_stride;
      std::memset(o, 0, hd * sizeof(float));
      for (int64_t u = 0; u < n; ++u)
        kernels::Axpy(p[t * n + u], v + u * hd, o, hd);
    }
    return;
  }
  const int64_t lanes = hd / 8;
  for (int64_t t = 0; t < n; t += 2) {
    const int rows = t + 1 < n ? 2 : 1;
    __m256 acc[2][8];
    for (int r = 0; r < rows; ++r)
      for (int64_t l = 0; l < lanes; ++l) acc[r][l] = _mm256_setzero_ps();
    for (int64_t u = 0; u < n; ++u) {
      const float* vu = v + u * hd;
      for (int r = 0; r < rows; ++r) {
        const __m256 pr = _mm256_set1_ps(p[(t + r) * n + u]);
        for (int64_t l = 0; l < lanes; ++l) {
          acc[r][l] =
              _mm256_fmadd_ps(pr, _mm256_loadu_ps(vu + 8 * l), acc[r][l]);
        }
      }
    }
    for (int r = 0; r < rows; ++r)
      for (int64_t l = 0; l < lanes; ++l)
        _mm256_storeu_ps(out + (t + r) * out_stride + 8 * l, acc[r][l]);
  }
}

}  // namespace

void BertEncoder::Attention(const std::vector<int64_t>& starts, int64_t total,
                            Workspace* ws) const {
  const int64_t d = dim_, hd = dim_ / n_heads_;
  const int64_t n_seqs = static_cast<int64_t>(starts.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t per_thread = 3 * n_ctx_ * hd + n_ctx_ * n_ctx_;
  const float* qkv = ws->qkv.data();
  // One task per (sequence, head): attention never crosses sequences.
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < n_seqs * n_heads_; ++task) {
    const int64_t s = task / n_heads_, h = task % n_heads_;
    const int64_t begin = starts[s];
    const int64_t n = (s + 1 < n_seqs ? starts[s + 1] : total) - begin;
    float* q = &ws->heads[omp_get_thread_num() * per_thread];  // [n, hd]
    float* kt = q + n_ctx_ * hd;                               // [hd, n]
    float* v = kt + n_ctx_ * hd;                               // [n, hd]
    float* scores = v + n_ctx_ * hd;                           // [n, n]
    // This head's rows, contiguous (the keys transposed).
    for (int64_t u = 0; u < n; ++u) {
      const float* row = qkv + (begin + u) * 3 * d + h * hd;
      std::memcpy(q + u * hd, row, hd * sizeof(float));
      for (int64_t i = 0; i < hd; ++i) kt[i * n + u] = row[d + i];
      std::memcpy(v + u * hd, row + 2 * d, hd * sizeof(float));
    }
    QueryKeyScores(q, kt, n, hd, scores);
    for (int64_t t = 0; t < n; ++t) {
      float* row = scores + t * n;
      float mx = -INFINITY;
      for (int64_t u = 0; u < n; ++u) mx = std::max(mx, row[u] *= scale);
      const float inv = 1.0f / ExpShiftSum(row, n, mx);
      for (int64_t u = 0; u < n; ++u) row[u] *= inv;
    }
    WeightedValues(scores, v, n, hd, &ws->att[begin * d + h * hd], d);
  }
}

absl::Status BertEncoder::EncodePass(
    const std::vector<std::vector<int32_t>>& sequences, size_t first,
    size_t last, Workspace* ws, std::vector<std::vector<float>>* out) const {
  const int64_t d = dim_;
  std::vector<int64_t> starts;  // [sequences] first row of each
  int64_t total = 0;
  for (size_t s = first; s < last; ++s) {
    starts.push_back(total);
    total += std::min<int64_t>(sequences[s].size(), n_ctx_);
  }
  Reserve(total, ws);
  for (size_t s = first; s < last; ++s) {
    const int64_t begin = starts[s - first];
    const int64_t n = std::min<int64_t>(sequences[s].size(), n_ctx_);
    for (int64_t t = 0; t < n; ++t) {
      const int32_t tok = sequences[s][t];
      float* x = &ws->x[(begin + t) * d];
      for (int64_t i = 0; i < d; ++i)
        x[i] = tok_emb_[tok * d + i] + pos_emb_[t * d + i] + type_emb_[i];
    }
  }
  LayerNorm(ws->x.data(), emb_norm_w_.data(), emb_norm_b_.data(), total, d,
            eps_);
  for (const Layer& layer : layers_) {
    RETURN_IF_ERROR(
        layer.qkv->Forward(ws->x.data(), total, ws->qkv.data(), &ws->linear));
    Attention(starts, total, ws);
    RETURN_IF_ERROR(
        layer.out->Forward(ws->att.data(), total, ws->tmp.data(), &ws->linear));
    kernels::AddInPlace(ws->x.data(), ws->tmp.data(), total * d);
    LayerNorm(ws->x.data(), layer.attn_norm_w.data(), layer.attn_norm_b.data(),
              total, d, eps_);
    RETURN_IF_ERROR(
        layer.up->Forward(ws->x.data(), total, ws->ff.data(), &ws->linear));
    Gelu(ws->ff.data(), total * n_ff_);
    RETURN_IF_ERROR(
        layer.down->Forward(ws->ff.data(), total, ws->tmp.data(), &ws->linear));
    kernels::AddInPlace(ws->x.data(), ws->tmp.data(), total * d);
    LayerNorm(ws->x.data(), layer.out_norm_w.data(), layer.out_norm_b.data(),
              total, d, eps_);
  }
  for (size_t s = first; s < last; ++s) {
    const int64_t begin = starts[s - first];
    const int64_t n = std::min<int64_t>(sequences[s].size(), n_ctx_);
    std::vector<float> e(d, 0.0f);  // [dim]
    if (mean_pooling_) {
      for (int64_t t = 0; t < n; ++t)
        kernels::AddInPlace(e.data(), &ws->x[(begin + t) * d], d);
      for (float& v : e) v /= static_cast<float>(n);
    } else {
      std::copy(&ws->x[begin * d], &ws->x[begin * d] + d, e.begin());
    }
    const double ss = kernels::SumOfSquares(e.data(), d);
    const float inv = ss > 0 ? static_cast<float>(1.0 / std::sqrt(ss)) : 0.0f;
    for (float& v : e) v *= inv;
    (*out)[s] = std::move(e);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<float>>> BertEncoder::Embed(
    const std::vector<std::vector<int32_t>>& sequences,
    Workspace* workspace) const {
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
    RETURN_IF_ERROR(EncodePass(sequences, first, last, workspace, &out));
    first = last;
  }
  return out;
}

}  // namespace lumen::engine
