#include "tests/engine/reference_transformer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "tests/engine/naive_quants.h"

namespace lumen::testing {

namespace {

using Mat = std::vector<double>;  // row-major

struct Tensor {
  std::vector<double> v;
  int64_t cols = 0, rows = 1;  // ggml dims[0], dims[1]
};

Tensor LoadRaw(const engine::GgufFile& f, const std::string& name) {
  const engine::GgufTensorInfo* t = f.FindTensor(name);
  Tensor out;
  if (t == nullptr) return out;
  // Dequantized by the test's own reference (naive_quants.h), not the
  // engine's code.
  out.v = NaiveDequantize(t->type, f.TensorData(*t).data(), t->num_elements);
  out.cols = t->dims[0];
  out.rows = t->dims.size() > 1 ? t->dims[1] : 1;
  return out;
}

// The adapter being merged into the weights (W + alpha/r B A), if any.
const engine::GgufFile* merge_adapter = nullptr;

Tensor Load(const engine::GgufFile& f, const std::string& name) {
  Tensor w = LoadRaw(f, name);
  if (merge_adapter == nullptr) return w;
  const Tensor a = LoadRaw(*merge_adapter, name + ".lora_a");  // [r, in]
  const Tensor b = LoadRaw(*merge_adapter, name + ".lora_b");  // [out, r]
  if (a.v.empty()) return w;
  const int64_t r = a.rows;
  const double alpha =
      merge_adapter->GetFloatOr("adapter.lora.alpha", 0.0).value_or(0.0);
  const double scale = alpha != 0 ? alpha / r : 1.0;
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t i = 0; i < w.cols; ++i) {
      double delta = 0;
      for (int64_t j = 0; j < r; ++j)
        delta += b.v[o * r + j] * a.v[j * a.cols + i];
      w.v[o * w.cols + i] += scale * delta;
    }
  }
  return w;
}

// Rows [first, first + rows) of a stacked tensor, as a matrix.
Tensor Slice(const Tensor& t, int64_t expert) {
  Tensor out;
  out.cols = t.cols;
  out.rows = t.rows;
  const int64_t n = t.cols * t.rows;
  out.v.assign(t.v.begin() + expert * n, t.v.begin() + (expert + 1) * n);
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

Mat SwiGlu(const Mat& xn, int64_t n, const Tensor& gate, const Tensor& up,
           const Tensor& down) {
  Mat g = Linear(xn, n, gate, nullptr);
  Mat u = Linear(xn, n, up, nullptr);
  for (size_t i = 0; i < g.size(); ++i)
    g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
  return Linear(g, n, down, nullptr);
}

// Mixture of experts, token by token: softmax over the router's logits, the
// top k (ties to the lower index), renormalized unless qwen2moe, plus
// qwen2moe's shared expert gated by a sigmoid.
Mat MoeFfn(const engine::GgufFile& f, const std::string& p, const Mat& xn,
           int64_t n, int64_t d, int64_t k, bool qwen2moe) {
  const Tensor router = Load(f, p + "ffn_gate_inp.weight");
  const Tensor gates = Load(f, p + "ffn_gate_exps.weight");
  const Tensor ups = Load(f, p + "ffn_up_exps.weight");
  const Tensor downs = Load(f, p + "ffn_down_exps.weight");
  const int64_t E = router.rows;
  Mat out(n * d, 0.0);
  for (int64_t t = 0; t < n; ++t) {
    Mat x(xn.begin() + t * d, xn.begin() + (t + 1) * d);
    Mat logits = Linear(x, 1, router, nullptr);
    const double mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (double& l : logits) sum += (l = std::exp(l - mx));
    for (double& l : logits) l /= sum;
    std::vector<int64_t> order(E);
    for (int64_t e = 0; e < E; ++e) order[e] = e;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return logits[a] > logits[b];
    });
    double chosen = 0;
    for (int64_t j = 0; j < k; ++j) chosen += logits[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = order[j];
      const double w = qwen2moe ? logits[e] : logits[e] / chosen;
      Mat y = SwiGlu(x, 1, Slice(gates, e), Slice(ups, e), Slice(downs, e));
      for (int64_t i = 0; i < d; ++i) out[t * d + i] += w * y[i];
    }
    if (qwen2moe) {
      Mat y = SwiGlu(x, 1, Load(f, p + "ffn_gate_shexp.weight"),
                     Load(f, p + "ffn_up_shexp.weight"),
                     Load(f, p + "ffn_down_shexp.weight"));
      const Tensor g = Load(f, p + "ffn_gate_inp_shexp.weight");
      double dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += g.v[i] * x[i];
      const double gate = 1.0 / (1.0 + std::exp(-dot));
      for (int64_t i = 0; i < d; ++i) out[t * d + i] += gate * y[i];
    }
  }
  return out;
}

}  // namespace

std::vector<std::vector<double>> ReferenceLogits(
    const engine::GgufFile& f, std::span<const int32_t> tokens,
    const engine::GgufFile* adapter) {
  merge_adapter = adapter;
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
  const bool halves = arch != "llama";
  const int64_t experts_used = Int(f, arch + ".expert_used_count", 0);
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
    Mat down = experts_used > 0
                   ? MoeFfn(f, p, xn, n, d, experts_used, arch == "qwen2moe")
                   : SwiGlu(xn, n, Load(f, p + "ffn_gate.weight"),
                            Load(f, p + "ffn_up.weight"),
                            Load(f, p + "ffn_down.weight"));
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
