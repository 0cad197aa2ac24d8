// Mixture-of-experts: the grouped expert computation against a token-by-token
// double-precision version on hand-built weights that route very unevenly
// (experts with most tokens, few, none), and a synthetic Mixtral model run
// as a ragged batch of several sequences against the naive reference.

#include <cmath>
#include <iostream>
#include <random>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/moe_ffn.h"
#include "gtest/gtest.h"
#include "tests/engine/model_runner.h"
#include "tests/engine/reference_transformer.h"
#include "tests/test_support.h"
#include "tools/synth/synth_model.h"

namespace lumen::engine {
namespace {

using kernels::Linear;

std::vector<float> RandomVector(int64_t n, float stddev, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = normal(*rng);
  return v;
}

struct DenseExpert {
  std::vector<float> gate_up, down;  // [2 ff, d], [d, ff]
};

// SwiGLU of one row in double.
std::vector<double> NaiveExpert(const DenseExpert& e, const float* x, int64_t d,
                                int64_t ff) {
  std::vector<double> h(ff), y(d, 0.0);
  for (int64_t i = 0; i < ff; ++i) {
    double g = 0, u = 0;
    for (int64_t j = 0; j < d; ++j) {
      g += double(e.gate_up[i * d + j]) * x[j];
      u += double(e.gate_up[(ff + i) * d + j]) * x[j];
    }
    h[i] = g / (1 + std::exp(-g)) * u;
  }
  for (int64_t o = 0; o < d; ++o) {
    for (int64_t i = 0; i < ff; ++i) y[o] += double(e.down[o * ff + i]) * h[i];
  }
  return y;
}

class MoeFfnTest : public ::testing::TestWithParam<bool> {};

TEST_P(MoeFfnTest, UnevenRoutingMatchesTokenByTokenDouble) {
  const bool qwen_style = GetParam();  // no renormalization, shared expert
  const int64_t d = 64, ff = 32, E = 6, k = 2, n = 40, shared_ff = 48;
  std::mt19937 rng(5);
  // Dimension 0 of the input decides the route: +5 -> experts 0 and 1,
  // -5 -> experts 5 and 4; experts 2 and 3 never win.
  std::vector<float> router = RandomVector(E * d, 0.01f, &rng);
  router[0 * d] = 2.0f;
  router[1 * d] = 1.5f;
  router[4 * d] = -1.5f;
  router[5 * d] = -2.0f;
  std::vector<float> x = RandomVector(n * d, 0.5f, &rng);
  int64_t positive = 0;
  for (int64_t t = 0; t < n; ++t) {
    x[t * d] = t % 8 == 3 ? -5.0f : 5.0f;
    positive += x[t * d] > 0;
  }
  std::vector<DenseExpert> dense(E + 1);  // the last one is the shared expert
  std::vector<FfnExpert> experts;
  for (int64_t e = 0; e <= E; ++e) {
    const int64_t width = e == E ? shared_ff : ff;
    dense[e].gate_up = RandomVector(2 * width * d, 0.1f, &rng);
    dense[e].down = RandomVector(d * width, 0.1f, &rng);
    if (e == E) break;
    FfnExpert fe;
    fe.gate_up = *Linear::CreateF32(2 * ff, d, dense[e].gate_up, {});
    fe.down = *Linear::CreateF32(d, ff, dense[e].down, {});
    experts.push_back(std::move(fe));
  }
  FfnExpert shared;
  std::vector<float> shared_gate;
  if (qwen_style) {
    shared.gate_up = *Linear::CreateF32(2 * shared_ff, d, dense[E].gate_up, {});
    shared.down = *Linear::CreateF32(d, shared_ff, dense[E].down, {});
    shared_gate = RandomVector(d, 0.1f, &rng);
  }
  MoeShape shape{d, ff, E, k, !qwen_style, qwen_style ? shared_ff : 0};
  auto moe =
      MoeFfn::Create(shape, *Linear::CreateF32(E, d, router, {}),
                     std::move(experts), std::move(shared), shared_gate, n);
  ASSERT_TRUE(moe.ok()) << moe.status();
  kernels::LinearScratch scratch;
  scratch.Reserve(256, 256);
  std::vector<float> out(n * d);
  ASSERT_TRUE((*moe)->Forward(x.data(), n, out.data(), &scratch).ok());

  // Expert loads: 35 tokens on 0 and 1, 5 on 4 and 5, none on 2 and 3.
  const std::vector<int64_t> want_load = {positive, positive,     0,
                                          0,        n - positive, n - positive};
  for (int64_t e = 0; e < E; ++e)
    EXPECT_EQ((*moe)->expert_tokens(e), want_load[e]) << "expert " << e;

  double worst = 0;
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = &x[t * d];
    std::vector<double> p(E);
    double mx = -1e300, sum = 0;
    for (int64_t e = 0; e < E; ++e) {
      for (int64_t j = 0; j < d; ++j) p[e] += double(router[e * d + j]) * xt[j];
      mx = std::max(mx, p[e]);
    }
    for (double& v : p) sum += (v = std::exp(v - mx));
    for (double& v : p) v /= sum;
    std::vector<int64_t> order = {0, 1, 2, 3, 4, 5};
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    const double chosen = p[order[0]] + p[order[1]];
    std::vector<double> want(d, 0.0);
    for (int64_t j = 0; j < k; ++j) {
      const double w = qwen_style ? p[order[j]] : p[order[j]] / chosen;
      const auto y = NaiveExpert(dense[order[j]], xt, d, ff);
      for (int64_t i = 0; i < d; ++i) want[i] += w * y[i];
    }
    if (qwen_style) {
      double g = 0;
      for (int64_t j = 0; j < d; ++j) g += double(shared_gate[j]) * xt[j];
      const auto y = NaiveExpert(dense[E], xt, d, shared_ff);
      for (int64_t i = 0; i < d; ++i) want[i] += y[i] / (1 + std::exp(-g));
    }
    double max_abs = 0, max_diff = 0;
    for (int64_t i = 0; i < d; ++i) {
      max_abs = std::max(max_abs, std::fabs(want[i]));
      max_diff = std::max(max_diff, std::fabs(want[i] - out[t * d + i]));
    }
    EXPECT_LE(max_diff, 1e-5 * max_abs + 1e-6) << "token " << t;
    worst = std::max(worst, max_diff / max_abs);
  }
  std::cout << (qwen_style ? "qwen2moe-style" : "mixtral-style")
            << " MoE block, loads 35/35/0/0/5/5: worst max|diff|/max|out| = "
            << worst << "\n";
}

INSTANTIATE_TEST_SUITE_P(Styles, MoeFfnTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Qwen2Moe" : "Mixtral";
                         });

TEST(MoeModelTest, RaggedBatchOfSequencesMatchesReference) {
  const std::string path = testing::SynthTinyModel([](tools::SynthOptions& o) {
    o.arch = "mixtral";
    o.layers = 2;
    o.ffn = 64;
    o.seed = 21;
  });
  auto f = testing::OpenModel(path);
  auto m = testing::LoadModel(*f, WeightMode::kF32);

  // Four sequences of different lengths prefilled together in one step,
  // then decoded together for 5 steps.
  std::vector<std::vector<int32_t>> seqs;
  for (int s = 0; s < 4; ++s) {
    std::vector<int32_t> t;
    for (int i = 0; i < 6 + 9 * s + 5; ++i)
      t.push_back((i * 7919 + s * 104729 + 13) % 32000);
    seqs.push_back(t);
  }
  testing::Runner r(m.get(), 4, 4);
  std::vector<std::pair<int, std::vector<int32_t>>> prefill;
  for (int s = 0; s < 4; ++s) {
    prefill.push_back(
        {s, std::vector<int32_t>(seqs[s].begin(), seqs[s].end() - 5)});
  }
  std::vector<std::vector<std::vector<float>>> got(4);
  auto rows = r.Step(prefill);
  for (int s = 0; s < 4; ++s) got[s].push_back(rows[s]);
  for (int step = 5; step > 0; --step) {
    std::vector<std::pair<int, std::vector<int32_t>>> work;
    for (int s = 0; s < 4; ++s)
      work.push_back({s, {seqs[s][seqs[s].size() - step]}});
    rows = r.Step(work);
    for (int s = 0; s < 4; ++s) got[s].push_back(rows[s]);
  }
  for (int s = 0; s < 4; ++s) {
    const auto ref = testing::ReferenceLogits(*f, seqs[s]);
    for (int i = 0; i < 6; ++i) {
      const auto& want = ref[seqs[s].size() - 6 + i];
      double max_abs = 0, max_diff = 0;
      for (size_t v = 0; v < want.size(); ++v) {
        max_abs = std::max(max_abs, std::fabs(want[v]));
        max_diff = std::max(max_diff, std::fabs(want[v] - got[s][i][v]));
      }
      EXPECT_LE(max_diff, 1e-4 * max_abs) << "sequence " << s << " row " << i;
    }
  }
  // Every token went to exactly k experts in each layer.
  std::vector<int64_t> counts;
  m->ExpertTokenCounts(&counts);
  ASSERT_EQ(counts.size(), 16u);
  int64_t tokens = 0;
  for (const auto& sq : seqs) tokens += sq.size();
  for (int l = 0; l < 2; ++l) {
    int64_t sum = 0, max = 0;
    for (int e = 0; e < 8; ++e) {
      sum += counts[l * 8 + e];
      max = std::max(max, counts[l * 8 + e]);
    }
    EXPECT_EQ(sum, 2 * tokens) << "layer " << l;
    std::cout << "layer " << l << " expert load max/mean "
              << double(max) * 8 / sum << "\n";
  }
}

TEST(MoeModelTest, Int8ExpertsStayCloseToF32) {
  const std::string path = testing::SynthTinyModel([](tools::SynthOptions& o) {
    o.arch = "qwen2moe";
    o.dim = 128;
    o.layers = 2;
    o.ffn = 64;
    o.seed = 4;
  });
  auto f = testing::OpenModel(path);
  auto f32 = testing::LoadModel(*f, WeightMode::kF32);
  auto i8 = testing::LoadModel(*f, WeightMode::kInt8);
  ASSERT_TRUE(i8->int8());
  EXPECT_LT(i8->resident_bytes().ffn, f32->resident_bytes().ffn / 3);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 24; ++i) tokens.push_back((i * 7919 + 5) % 32000);
  testing::Runner a(f32.get(), 1, 4), b(i8.get(), 1, 4);
  const auto p = a.Step({{0, tokens}})[0];
  const auto q = b.Step({{0, tokens}})[0];
  double max_abs = 0, max_diff = 0;
  for (size_t v = 0; v < p.size(); ++v) {
    max_abs = std::max<double>(max_abs, std::fabs(p[v]));
    max_diff = std::max<double>(max_diff, std::fabs(p[v] - q[v]));
  }
  std::cout << "qwen2moe int8 vs f32: max|diff|/max|logit| = "
            << max_diff / max_abs << "\n";
  EXPECT_LT(max_diff / max_abs, 0.05);
}

TEST(MoeModelTest, MissingExpertTensorIsNamed) {
  const std::string dir = testing::MakeTempDir();
  auto full =
      testing::OpenModel(testing::SynthTinyModel([](tools::SynthOptions& o) {
        o.arch = "qwen2moe";
        o.layers = 1;
        o.kv_heads = 4;
        o.ffn = 32;
        o.experts = 4;
        o.ctx = 64;
      }));
  GgufWriter w;
  for (const auto& kv : full->metadata())
    w.CopyValue(std::string(kv.key), kv.value);
  for (const auto& t : full->tensors()) {
    if (t.name == "blk.0.ffn_up_shexp.weight") continue;
    auto data = full->TensorData(t);
    ASSERT_TRUE(w.AddTensor(std::string(t.name), t.type, t.dims,
                            std::vector<uint8_t>(data.begin(), data.end()))
                    .ok());
  }
  ASSERT_TRUE(w.Write(dir + "/broken.gguf").ok());
  auto broken = testing::OpenModel(dir + "/broken.gguf");
  TransformerOptions opts;
  opts.measure_crossover = false;
  auto m = Transformer::Load(*broken, opts);
  EXPECT_THAT(
      m,
      StatusIs(absl::StatusCode::kInvalidArgument,
               ::testing::HasSubstr("blk.0.ffn_up_shexp.weight is missing")));
}

}  // namespace
}  // namespace lumen::engine
