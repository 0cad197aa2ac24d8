// The engine on GGUF files that llama.cpp quantized (../shared/testdata/quants,
// see its README): teacher-forced top-8 log-probabilities against llama.cpp's
// reference.json within the README's tolerance, greedy choices where they are
// clear, with each kernel variant and with --weights f32; and the engine's
// forward against the naive fp64 forward on the same dequantized weights.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engine/kernels/small_gemm_isa.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/model_runner.h"
#include "tests/engine/reference_transformer.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

using json = nlohmann::json;
using kernels::SmallGemmIsa;

const json& Reference() {
  static const json* ref = [] {
    std::ifstream in(testing::TestDataPath("quants/reference.json"));
    return new json(json::parse(in));
  }();
  return *ref;
}

std::vector<std::string> FileNames() {
  std::vector<std::string> names;
  for (const auto& [name, _] : Reference()["files"].items())
    names.push_back(name);
  return names;
}

std::vector<double> LogSoftmax(const std::vector<float>& logits) {
  const double mx = *std::max_element(logits.begin(), logits.end());
  double z = 0;
  for (float l : logits) z += std::exp(l - mx);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    out[i] = logits[i] - mx - std::log(z);
  return out;
}

struct Tolerance {
  double d8, median, prob, gap;
};

Tolerance TolerancesFor(const std::string& name) {
  if (absl::StartsWith(name, "tiny-")) return {0.04, 0.015, 1.0, 0.05};
  return {0.4, 0.15, 0.035, 0.5};
}

enum class Variant { kAvx512, kAvx2, kF32Weights };

class LlamaCppReferenceTest
    : public ::testing::TestWithParam<std::tuple<std::string, Variant>> {
 protected:
  void SetUp() override {
    const Variant v = std::get<1>(GetParam());
    if (!kernels::SetSmallGemmIsa(v == Variant::kAvx2 ? SmallGemmIsa::kAvx2
                                                      : SmallGemmIsa::kAvx512))
      GTEST_SKIP() << "this CPU lacks AVX-512 F/BW/VL/VNNI";
  }
  void TearDown() override {
    kernels::SetSmallGemmIsa(kernels::DetectSmallGemmIsa());
  }
};

TEST_P(LlamaCppReferenceTest, TeacherForcedLogProbsAgree) {
  const auto& [name, variant] = GetParam();
  const json& file = Reference()["files"][name];
  const std::string path = testing::TestDataPath(
      absl::StrCat("quants/", file["path"].get<std::string>()));
  auto f = testing::OpenModel(path);
  ASSERT_NE(f, nullptr);
  auto m = testing::LoadModel(*f, variant == Variant::kF32Weights
                                      ? WeightMode::kF32
                                      : WeightMode::kAuto);
  ASSERT_NE(m, nullptr);
  const Tolerance tol = TolerancesFor(name);
  std::vector<double> d8s;
  int clear_steps = 0, greedy_cases = 0;
  double worst_prob = 0;
  for (const json& c : file["cases"]) {
    const std::vector<int32_t> prompt = c["prompt_ids"];
    const std::vector<int32_t> generated = c["generated_ids"];
    testing::Runner r(m.get(), 1, 8);
    std::vector<float> logits = r.Step({{0, prompt}})[0];
    for (size_t i = 0; i < generated.size(); ++i) {
      const json& step = c["steps"][i];
      const std::vector<double> lp = LogSoftmax(logits);
      double d8 = 0;
      for (const json& top : step["top"]) {
        const int id = top[0];
        d8 = std::max(d8, std::fabs(lp[id] - top[2].get<double>()));
        worst_prob = std::max(
            worst_prob, std::fabs(std::exp(lp[id]) - top[1].get<double>()));
      }
      d8s.push_back(d8);
      EXPECT_LE(d8, tol.d8) << name << " '" << c["prompt"] << "' step " << i;
      if (step["gap12"].get<double>() >= tol.gap) {
        ++clear_steps;
        EXPECT_EQ(testing::Argmax(logits), step["id"].get<int>())
            << name << " '" << c["prompt"] << "' step " << i << " gap12 "
            << step["gap12"];
      }
      logits = r.Step({{0, {generated[i]}}})[0];
    }
    // Free-running greedy: equal ids, or the first difference at a near-tie.
    const std::vector<int32_t> greedy = testing::GreedyAlone(
        m.get(), prompt, static_cast<int>(generated.size()));
    size_t same = 0;
    while (same < greedy.size() && greedy[same] == generated[same]) ++same;
    if (same < greedy.size()) {
      EXPECT_LT(c["steps"][same]["gap12"].get<double>(), tol.gap)
          << name << " '" << c["prompt"] << "' greedy differs at step " << same;
    } else {
      ++greedy_cases;
    }
  }
  std::sort(d8s.begin(), d8s.end());
  const double median = d8s[d8s.size() / 2];
  EXPECT_LE(median, tol.median) << name;
  EXPECT_LE(worst_prob, tol.prob) << name;
  // With AVX-512 every Q4_K/Q6_K matrix runs the tile kernel, which
  // quantizes activations per 256 values as llama.cpp's Q8_K does: on a
  // file of only those types the log-probabilities then agree to fp32
  // rounding at most steps, not just within the other-implementation
  // tolerance (measured medians 4e-7 to 8e-7; per 32 values they were 0.009
  // to 0.010).
  const std::string weights = m->WeightsSummary();  // "q4_K 12, q6_K 3"
  bool only_tiled = true;
  for (absl::string_view entry : absl::StrSplit(weights, ", ")) {
    const absl::string_view types = entry.substr(0, entry.find(' '));
    for (absl::string_view type : absl::StrSplit(types, '+'))
      only_tiled = only_tiled && (type == "q4_K" || type == "q6_K");
  }
  if (variant == Variant::kAvx512 && only_tiled) {  // (SetUp skips without)
    EXPECT_LE(median, 1e-5) << name << " (" << weights << ")";
  }
  // The stories260K files hold F16 ffn_down matrices, whose inputs llama.cpp
  // rounds to F16 (kernels::InputRounding). Rounded the same way, on the
  // AVX2 kernels these files, too, agree to fp32 rounding at most steps
  // (measured medians 1.2e-6 to 2.1e-6; without the rounding 0.075 to
  // 0.079, from 8-bit activation quantization amplifying the difference).
  if (variant == Variant::kAvx2 && absl::StartsWith(name, "stories260K-")) {
    EXPECT_LE(median, 1e-4) << name << " (" << weights << ")";
  }
  std::cout << name << ": d8_max " << d8s.back() << ", d8_med " << median
            << ", |dprob| max " << worst_prob << ", argmax checked at "
            << clear_steps << " clear steps, greedy equal in " << greedy_cases
            << "/4 cases; weights " << m->WeightsSummary() << "\n";
}

INSTANTIATE_TEST_SUITE_P(
    Files, LlamaCppReferenceTest,
    ::testing::Combine(::testing::ValuesIn(FileNames()),
                       ::testing::Values(Variant::kAvx512, Variant::kAvx2,
                                         Variant::kF32Weights)),
    [](const auto& info) {
      std::string n = absl::StrReplaceAll(
          std::get<0>(info.param), {{".gguf", ""}, {"-", "_"}, {".", "_"}});
      switch (std::get<1>(info.param)) {
        case Variant::kAvx512:
          return n + "_avx512";
        case Variant::kAvx2:
          return n + "_avx2";
        case Variant::kF32Weights:
          return n + "_f32weights";
      }
      return n;
    });

// The engine (packed kernels, int8 activations) against the naive fp64
// forward pass on the test's own dequantization of the same file.
class NaiveForwardTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NaiveForwardTest, EngineMatchesNaiveFp64Forward) {
  const std::string& name = GetParam();
  const json& file = Reference()["files"][name];
  auto f = testing::OpenModel(testing::TestDataPath(
      absl::StrCat("quants/", file["path"].get<std::string>())));
  ASSERT_NE(f, nullptr);
  auto m = testing::LoadModel(*f, WeightMode::kAuto);
  const json& c = file["cases"][2];
  std::vector<int32_t> tokens = c["prompt_ids"];
  const std::vector<int32_t> generated = c["generated_ids"];
  tokens.insert(tokens.end(), generated.begin(), generated.begin() + 8);
  const auto want = testing::ReferenceLogits(*f, tokens);
  testing::Runner r(m.get(), 1, 8);
  const Tolerance tol = TolerancesFor(name);
  double worst = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::vector<float> got = r.Step({{0, {tokens[t]}}})[0];
    std::vector<float> ref(want[t].begin(), want[t].end());
    const std::vector<double> lp = LogSoftmax(got), lr = LogSoftmax(ref);
    // The reference's 8 most likely tokens.
    std::vector<int> order(lr.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::partial_sort(order.begin(), order.begin() + 8, order.end(),
                      [&](int a, int b) { return lr[a] > lr[b]; });
    double d8 = 0;
    for (int k = 0; k < 8; ++k)
      d8 = std::max(d8, std::fabs(lp[order[k]] - lr[order[k]]));
    EXPECT_LE(d8, tol.d8) << name << " position " << t;
    worst = std::max(worst, d8);
  }
  std::cout << name << ": engine vs naive fp64 forward, top-8 log-prob max "
            << "difference " << worst << "\n";
}

INSTANTIATE_TEST_SUITE_P(Files, NaiveForwardTest,
                         ::testing::ValuesIn(FileNames()),
                         [](const auto& info) {
                           return absl::StrReplaceAll(
                               info.param,
                               {{".gguf", ""}, {"-", "_"}, {".", "_"}});
                         });

}  // namespace
}  // namespace lumen::engine
