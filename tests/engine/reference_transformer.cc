#include "tests/engine/reference_transformer.h"

#include <cmath>
#include <string>

#include "engine/gguf/tensor_convert.h"

namespace lumen::testing {

namespace {

using Mat = std::vector<double>;  // row-major

struct Tensor {
  std::vector<double> v;
  int64_t cols = 0, rows = 1;  // ggml dims[0], dims[1]
};

Tensor Load(const engine::GgufFile& f, const std::string& name) {
  const engine::GgufTensorInfo* t = f.FindTensor(name);
  Tensor out;
  if (t == nullptr) return out;
  std::vector<float> tmp(t->num_elements);
  (void)engine::DecodeToFloat(t->type, f.TensorData(*t).data(), t->num_elements,
                              tmp.data());
  out.v.assign(tmp.begin(), tmp.end());
  out.cols = t->dims[0];
  out.rows = t->dims.size() > 1 ? t->dims[1] : 1;
  return out;
}

int64_t Int(const engine::GgufFile& f, const std::string& key,
            int64_t fallback) {
  auto v = f.GetIntOr(key, fallback);
  return v.ok() ? *v : fallback;
}

// y[r] = W x[r] (+ b) for W with `rows` outputs of `cols` inputs.
Mat Linear(const Mat& x, int64_t n, const Tensor& w, const Tensor* b) {
  Mat y(n * w.rows, 0.0);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = 0; o < w.rows; ++o) {
      double s = b && !b->v.empty() ? b->v[o] : 0.0;
      for (int64_t i = 0; i < w.cols; ++i)
        s += w.v[o * w.cols + i] * x[t * w.cols + i];
      y[t * w.rows + o] = s;
    }
  }
  return y;
}

Mat RmsNorm(const Mat& x, int64_t n, int64_t d, const Tensor& w, double eps) {
  Mat y(n * d);
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += x[t * d + i] * x[t * d + i];
    const double scale = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t i = 0; i < d; ++i)
      y[t * d + i] = x[t * d + i] * scale * w.v[i];
  }
  return y;
}

void Rope(Mat& x, int64_t n, int64_t heads, int64_t hd, int64_t rope_dim,
          double base, bool halves) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      double* v = &x[(t * heads + h) * hd];
      for (int64_t i = 0; i < rope_dim / 2; ++i) {
        const double theta = t * std::pow(base, -2.0 * i / rope_dim);
        const int64_t a = halves ? i : 2 * i;
        const int64_t b = halves ? i + rope_dim / 2 : 2 * i + 1;
        const double x0 = v[a], x1 = v[b];
        v[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
        v[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
    }
  }
}

}  // namespace

std::vector<std::vector<double>> ReferenceLogits(
    const engine::GgufFile& f, std::span<const int32_t> tokens) {
  const std::string arch(*f.GetString("general.architecture"));
  const int64_t d = Int(f, arch + ".embedding_length", 0);
  const int64_t layers = Int(f, arch + ".block_count", 0);
  const int64_t heads = Int(f, arch + ".attention.head_count", 0);
  const int64_t kv_heads = Int(f, arch + ".attention.head_count_kv", heads);
  const int64_t hd = d / heads;
  const int64_t rope_dim = Int(f, arch + ".rope.dimension_count", hd);
  const double base =
      f.GetFloatOr(arch + ".rope.freq_base", 10000.0).value_or(10000.0);
  const double eps =
      f.GetFloatOr(arch + ".attention.layer_norm_rms_epsilon", 1e-5)
          .value_or(1e-5);
  const bool halves = arch == "qwen2";
  const int64_t n = static_cast<int64_t>(tokens.size());

  const Tensor embd = Load(f, "token_embd.weight");
  Mat x(n * d);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < d; ++i) x[t * d + i] = embd.v[tokens[t] * d + i];
  }
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const Tensor bq = Load(f, p + "attn_q.bias"),
                 bk = Load(f, p + "attn_k.bias"),
                 bv = Load(f, p + "attn_v.bias");
    Mat xn = RmsNorm(x, n, d, Load(f, p + "attn_norm.weight"), eps);
    Mat q = Linear(xn, n, Load(f, p + "attn_q.weight"), &bq);
    Mat k = Linear(xn, n, Load(f, p + "attn_k.weight"), &bk);
    Mat v = Linear(xn, n, Load(f, p + "attn_v.weight"), &bv);
    Rope(q, n, heads, hd, rope_dim, base, halves);
    Rope(k, n, kv_heads, hd, rope_dim, base, halves);
    Mat att(n * heads * hd, 0.0);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvh = h / (heads / kv_heads);
        std::vector<double> s(t + 1);
        double mx = -1e300;
        for (int64_t u = 0; u <= t; ++u) {
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i) {
            dot +=
                q[(t * heads + h) * hd + i] * k[(u * kv_heads + kvh) * hd + i];
          }
          s[u] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[u]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t u = 0; u <= t; ++u) {
          for (int64_t i = 0; i < hd; ++i) {
            att[(t * heads + h) * hd + i] +=
                s[u] / sum * v[(u * kv_heads + kvh) * hd + i];
          }
        }
      }
    }
    Mat o = Linear(att, n, Load(f, p + "attn_output.weight"), nullptr);
    for (int64_t i = 0; i < n * d; ++i) x[i] += o[i];
    xn = RmsNorm(x, n, d, Load(f, p + "ffn_norm.weight"), eps);
    Mat g = Linear(xn, n, Load(f, p + "ffn_gate.weight"), nullptr);
    Mat u = Linear(xn, n, Load(f, p + "ffn_up.weight"), nullptr);
    for (size_t i = 0; i < g.size(); ++i)
      g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
    Mat down = Linear(g, n, Load(f, p + "ffn_down.weight"), nullptr);
    for (int64_t i = 0; i < n * d; ++i) x[i] += down[i];
  }
  Mat xn = RmsNorm(x, n, d, Load(f, "output_norm.weight"), eps);
  Tensor out = Load(f, "output.weight");
  if (out.v.empty()) out = embd;
  Mat logits = Linear(xn, n, out, nullptr);
  std::vector<std::vector<double>> rows(n);
  for (int64_t t = 0; t < n; ++t) {
    rows[t].assign(logits.begin() + t * out.rows,
                   logits.begin() + (t + 1) * out.rows);
  }
  return rows;
}

}  // namespace lumen::testing
