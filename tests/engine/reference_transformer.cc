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

// RoPE of every head of x ([n, heads * hd]) at positions 0..n-1: pair i
// of a head turns by p * base^(-2i / rope_dim) / factors[i], with linear
// scaling dividing that by `factor`, and YaRN mixing the divided and
// undivided angles by a ramp over the pairs; cos and sin times mscale.
struct RopeSpec {
  int64_t dim = 0;
  double base = 10000;
  bool halves = false;  // NEOX pairs (i, i + dim / 2); else (2i, 2i + 1)
  std::vector<double> factors;  // per pair, or empty
  double factor = 1;
  bool yarn = false;
  int64_t original_context = 0;
  double mscale = 1;
};

void Rope(Mat& x, int64_t n, int64_t heads, int64_t hd, const RopeSpec& r) {
  const int64_t half = r.dim / 2;
  // YaRN: pairs below `low` keep their angle, above `high` get the divided
  // one (the dimension where a pair turns 32 resp. 1 times over the
  // original context).
  auto corr = [&](double turns) {
    return r.dim * std::log(r.original_context / (turns * 2 * M_PI)) /
           (2 * std::log(r.base));
  };
  const double low = std::max(0.0, std::floor(corr(32)));
  const double high = std::min(double(r.dim - 1), std::ceil(corr(1)));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      double* v = &x[(t * heads + h) * hd];
      for (int64_t i = 0; i < half; ++i) {
        double theta = t * std::pow(r.base, -2.0 * i / r.dim);
        if (!r.factors.empty()) theta /= r.factors[i];
        double angle = theta / r.factor;
        if (r.yarn) {
          const double keep =
              1 - std::clamp((i - low) / std::max(0.001, high - low), 0.0, 1.0);
          angle = angle * (1 - keep) + theta * keep;
        }
        const double c = std::cos(angle) * r.mscale;
        const double s = std::sin(angle) * r.mscale;
        const int64_t a = r.halves ? i : 2 * i;
        const int64_t b = r.halves ? i + half : 2 * i + 1;
        const double x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

// Gated FFN: down(act(gate x) * up x), act SiLU or GELU-tanh.
Mat GatedFfn(const Mat& xn, int64_t n, const Tensor& gate, const Tensor& up,
             const Tensor& down, bool gelu = false) {
  Mat g = Linear(xn, n, gate, nullptr);
  Mat u = Linear(xn, n, up, nullptr);
  for (size_t i = 0; i < g.size(); ++i) {
    const double x = g[i];
    const double act = gelu ? 0.5 * x *
                                  (1 + std::tanh(std::sqrt(2 / M_PI) *
                                                 (x + 0.044715 * x * x * x)))
                            : x / (1.0 + std::exp(-x));
    g[i] = act * u[i];
  }
  return Linear(g, n, down, nullptr);
}

Mat SwiGlu(const Mat& xn, int64_t n, const Tensor& gate, const Tensor& up,
           const Tensor& down) {
  return GatedFfn(xn, n, gate, up, down, false);
}

// Rows [first, first + count) of a matrix.
Tensor Rows(const Tensor& t, int64_t first, int64_t count) {
  Tensor out;
  out.cols = t.cols;
  out.rows = count;
  out.v.assign(t.v.begin() + first * t.cols,
               t.v.begin() + (first + count) * t.cols);
  return out;
}

// Each head (hd values) of every row normalized with weight w.
void HeadNorm(Mat& x, int64_t n, int64_t heads, int64_t hd, const Tensor& w,
              double eps) {
  Mat y = RmsNorm(x, n * heads, hd, w, eps);
  x.swap(y);
}

// Mixture of experts, token by token: softmax over the router's logits, the
// top k (ties to the lower index), renormalized unless qwen2moe, plus
// qwen2moe's shared expert gated by a sigmoid (qwen3moe: renormalized, no
// shared expert).
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
    const engine::GgufFile* adapter, int64_t n_ctx) {
  merge_adapter = adapter;
  const std::string arch(*f.GetString("general.architecture"));
  auto key = [&](const std::string& k) { return arch + "." + k; };
  auto real = [&](const std::string& k, double fallback) {
    return f.GetFloatOr(key(k), fallback).value_or(fallback);
  };
  const bool gemma3 = arch == "gemma3";
  const int64_t d = Int(f, key("embedding_length"), 0);
  const int64_t layers = Int(f, key("block_count"), 0);
  const int64_t heads = Int(f, key("attention.head_count"), 0);
  const int64_t kv_heads = Int(f, key("attention.head_count_kv"), heads);
  const int64_t hd = Int(f, key("attention.key_length"), d / heads);
  const int64_t n_ctx_train = Int(f, key("context_length"), 2048);
  const double eps = real("attention.layer_norm_rms_epsilon", 1e-5);
  const int64_t experts_used = Int(f, key("expert_used_count"), 0);
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n_ctx <= 0) n_ctx = n_ctx_train;

  // RoPE of the global layers, and gemma3's sliding-window layers.
  RopeSpec rope;
  rope.dim = Int(f, key("rope.dimension_count"), hd);
  rope.base = real("rope.freq_base", 10000);
  rope.halves = arch != "llama";
  std::string scaling = "linear";
  if (auto t = f.GetString(key("rope.scaling.type")); t.ok()) {
    scaling = std::string(*t);
  }
  rope.factor = real("rope.scaling.factor", 1);
  if (scaling == "none" || rope.factor == 0) rope.factor = 1;
  rope.yarn = scaling == "yarn";
  rope.original_context =
      Int(f, key("rope.scaling.original_context_length"), n_ctx_train);
  rope.mscale = real("rope.scaling.attn_factor", 1);
  if (rope.yarn && rope.factor > 1)
    rope.mscale *= 1 + 0.1 * std::log(rope.factor);
  Tensor factors = Load(f, "rope_freqs.weight");
  if (factors.v.empty() && f.FindTensor("rope_factors_long.weight")) {
    // llama.cpp: long factors when the context, padded to 256, exceeds
    // the original one.
    const bool use_long = (n_ctx + 255) / 256 * 256 > rope.original_context;
    factors = Load(
        f, use_long ? "rope_factors_long.weight" : "rope_factors_short.weight");
  }
  rope.factors = factors.v;
  RopeSpec local = rope;
  local.base = real("rope.freq_base_swa", 10000);
  local.factors.clear();
  local.factor = 1;
  local.yarn = false;
  local.mscale = real("rope.scaling.attn_factor", 1);
  const int64_t window =
      gemma3 ? Int(f, key("attention.sliding_window"), 0) : 0;

  const Tensor embd = Load(f, "token_embd.weight");
  // gemma3 scales the embeddings by sqrt(width), rounded to f32.
  const double embd_scale = gemma3 ? double(std::sqrt(float(d))) : 1.0;
  Mat x(n * d);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < d; ++i)
      x[t * d + i] = embd.v[tokens[t] * d + i] * embd_scale;
  }
  const int64_t qd = heads * hd, kvd = kv_heads * hd;
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    // gemma3: five sliding-window layers, then one global one.
    const bool sliding = window > 0 && l % 6 < 5;
    Mat xn = RmsNorm(x, n, d, Load(f, p + "attn_norm.weight"), eps);
    Mat q, k, v;
    const Tensor fused = Load(f, p + "attn_qkv.weight");
    if (!fused.v.empty()) {  // phi3: q rows, then k, then v
      q = Linear(xn, n, Rows(fused, 0, qd), nullptr);
      k = Linear(xn, n, Rows(fused, qd, kvd), nullptr);
      v = Linear(xn, n, Rows(fused, qd + kvd, kvd), nullptr);
    } else {
      const Tensor bq = Load(f, p + "attn_q.bias"),
                   bk = Load(f, p + "attn_k.bias"),
                   bv = Load(f, p + "attn_v.bias");
      q = Linear(xn, n, Load(f, p + "attn_q.weight"), &bq);
      k = Linear(xn, n, Load(f, p + "attn_k.weight"), &bk);
      v = Linear(xn, n, Load(f, p + "attn_v.weight"), &bv);
    }
    const Tensor q_norm = Load(f, p + "attn_q_norm.weight");
    if (!q_norm.v.empty()) {  // qwen3, gemma3
      HeadNorm(q, n, heads, hd, q_norm, eps);
      HeadNorm(k, n, kv_heads, hd, Load(f, p + "attn_k_norm.weight"), eps);
    }
    Rope(q, n, heads, hd, sliding ? local : rope);
    Rope(k, n, kv_heads, hd, sliding ? local : rope);
    Mat att(n * heads * hd, 0.0);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t first = sliding ? std::max<int64_t>(0, t - window + 1) : 0;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvh = h / (heads / kv_heads);
        std::vector<double> s(t + 1 - first);
        double mx = -1e300;
        for (int64_t u = first; u <= t; ++u) {
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i) {
            dot +=
                q[(t * heads + h) * hd + i] * k[(u * kv_heads + kvh) * hd + i];
          }
          s[u - first] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[u - first]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t u = first; u <= t; ++u) {
          for (int64_t i = 0; i < hd; ++i) {
            att[(t * heads + h) * hd + i] +=
                s[u - first] / sum * v[(u * kv_heads + kvh) * hd + i];
          }
        }
      }
    }
    Mat o = Linear(att, n, Load(f, p + "attn_output.weight"), nullptr);
    const Tensor post_attn = Load(f, p + "post_attention_norm.weight");
    if (!post_attn.v.empty()) o = RmsNorm(o, n, d, post_attn, eps);
    for (int64_t i = 0; i < n * d; ++i) x[i] += o[i];
    xn = RmsNorm(x, n, d, Load(f, p + "ffn_norm.weight"), eps);
    Mat down;
    if (experts_used > 0) {
      down = MoeFfn(f, p, xn, n, d, experts_used, arch == "qwen2moe");
    } else if (const Tensor gate = Load(f, p + "ffn_gate.weight");
               !gate.v.empty()) {
      down = GatedFfn(xn, n, gate, Load(f, p + "ffn_up.weight"),
                      Load(f, p + "ffn_down.weight"), /*gelu=*/gemma3);
    } else {  // phi3: gate rows, then up rows, in ffn_up
      const Tensor up = Load(f, p + "ffn_up.weight");
      const int64_t ff = up.rows / 2;
      down = GatedFfn(xn, n, Rows(up, 0, ff), Rows(up, ff, ff),
                      Load(f, p + "ffn_down.weight"));
    }
    const Tensor post_ffw = Load(f, p + "post_ffw_norm.weight");
    if (!post_ffw.v.empty()) down = RmsNorm(down, n, d, post_ffw, eps);
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
