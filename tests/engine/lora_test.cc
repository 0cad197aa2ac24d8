// LoRA adapters: the engine's W x + (alpha/r) B A x against the naive
// reference with merged weights, a batch mixing three adapters and the base
// model against each request alone, and the loader's validation errors.

#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/lora_adapter.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/engine/model_runner.h"
#include "tests/engine/reference_transformer.h"
#include "tests/test_support.h"
#include "tools/synth/synth_model.h"

namespace lumen::engine {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<LoraAdapter> LoadAdapter(const std::string& path,
                                         const ModelConfig& base) {
  auto f = testing::OpenModel(path);
  auto a = LoraAdapter::Load(*f, base);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? std::move(*a) : nullptr;
}

std::string SynthAdapter(const std::string& base, int rank, double alpha,
                         const std::string& targets, int seed) {
  tools::SynthLoraOptions o;
  o.base = base;
  o.rank = rank;
  o.alpha = alpha;
  o.targets = targets;
  o.seed = seed;
  const std::string path =
      absl::StrCat(testing::MakeTempDir(), "/lora", seed, ".gguf");
  EXPECT_TRUE(tools::SynthesizeLora(o, path).ok());
  return path;
}

double RelativeMaxDiff(const std::vector<double>& want,
                       const std::vector<float>& got) {
  double max_abs = 0, max_diff = 0;
  for (size_t v = 0; v < want.size(); ++v) {
    max_abs = std::max(max_abs, std::fabs(want[v]));
    max_diff = std::max(max_diff, std::fabs(want[v] - got[v]));
  }
  return max_diff / max_abs;
}

class LoraReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraReferenceTest, AdapterEqualsMergedWeights) {
  const std::string arch = GetParam();
  const std::string base =
      testing::SynthTinyModel([&arch](tools::SynthOptions& o) {
        o.arch = arch;
        o.seed = 11;
      });
  const std::string lora = SynthAdapter(base, 4, 8, "q,k,v,o,gate,up,down", 3);
  auto f = testing::OpenModel(base);
  auto af = testing::OpenModel(lora);
  auto m = testing::LoadModel(*f, WeightMode::kF32);
  auto adapter = LoadAdapter(lora, m->config());
  ASSERT_NE(adapter, nullptr);
  EXPECT_EQ(adapter->TargetSummary(), "q,k,v,o,gate,up,down");
  EXPECT_EQ(adapter->num_parameters(),
            3 * 4 * ((64 + 64) + 2 * (64 + 32) + (64 + 64) + 3 * (64 + 96)));

  std::vector<int32_t> tokens;
  for (int i = 0; i < 30; ++i) tokens.push_back((i * 7919 + 13) % 32000);
  const auto merged = testing::ReferenceLogits(*f, tokens, af.get());
  const auto plain = testing::ReferenceLogits(*f, tokens);
  testing::Runner r(m.get(), 1, 4);
  r.SetAdapter(0, adapter.get());
  std::vector<std::vector<float>> got;
  got.push_back(r.Step(
      {{0, std::vector<int32_t>(tokens.begin(), tokens.begin() + 20)}})[0]);
  for (int t = 20; t < 30; ++t) got.push_back(r.Step({{0, {tokens[t]}}})[0]);
  double worst = 0, smallest_change = 1e300;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = RelativeMaxDiff(merged[19 + i], got[i]);
    EXPECT_LE(diff, 1e-4) << "position " << 19 + i;
    worst = std::max(worst, diff);
    smallest_change =
        std::min(smallest_change, RelativeMaxDiff(plain[19 + i], got[i]));
  }
  // The adapter visibly changes the model (B is not zero).
  EXPECT_GT(smallest_change, 1e-2);
  std::cout << GetParam() << " + LoRA r4: worst max|diff|/max|logit| vs merged "
            << worst << "; smallest change vs base " << smallest_change << "\n";
}

TEST(LoraInt8Test, AdapterOnInt8BaseStaysCloseToMergedReference) {
  const std::string base = testing::SynthTinyModel([](tools::SynthOptions& o) {
    o.layers = 2;
    o.seed = 12;
  });
  const std::string lora = SynthAdapter(base, 8, 16, "q,k,v,o,gate,up,down", 9);
  auto f = testing::OpenModel(base);
  auto af = testing::OpenModel(lora);
  auto m = testing::LoadModel(*f, WeightMode::kInt8);
  auto adapter = LoadAdapter(lora, m->config());
  std::vector<int32_t> tokens;
  for (int i = 0; i < 20; ++i) tokens.push_back((i * 104729 + 7) % 32000);
  const auto merged = testing::ReferenceLogits(*f, tokens, af.get());
  const auto plain = testing::ReferenceLogits(*f, tokens);
  testing::Runner r(m.get(), 1, 4);
  r.SetAdapter(0, adapter.get());
  const auto got = r.Step({{0, tokens}})[0];
  const double to_merged = RelativeMaxDiff(merged.back(), got);
  const double to_plain = RelativeMaxDiff(plain.back(), got);
  std::cout << "int8 base + LoRA: max|diff|/max|logit| vs merged f32 "
            << to_merged << ", vs base without adapter " << to_plain << "\n";
  // Much closer to the adapted model than to the base: the delta survives
  // int8 base weights.
  EXPECT_LT(to_merged, 0.05);
  EXPECT_LT(to_merged, to_plain / 4);
}

INSTANTIATE_TEST_SUITE_P(Archs, LoraReferenceTest,
                         ::testing::Values("llama", "qwen2"));

TEST(LoraBatchTest, ThreeAdaptersAndTheBaseInOneBatchMatchAlone) {
  const std::string base = testing::TestDataPath("models/stories260K.gguf");
  auto f = testing::OpenModel(base);
  auto m = testing::LoadModel(*f, WeightMode::kF32);
  auto tok = Tokenizer::FromGguf(*f);
  ASSERT_TRUE(tok.ok());
  std::vector<std::unique_ptr<LoraAdapter>> adapters;
  adapters.push_back(
      LoadAdapter(SynthAdapter(base, 4, 8, "q,v", 1), m->config()));
  adapters.push_back(LoadAdapter(
      SynthAdapter(base, 8, 16, "q,k,v,o,gate,up,down", 2), m->config()));
  adapters.push_back(
      LoadAdapter(SynthAdapter(base, 16, 16, "gate,up,down", 3), m->config()));
  // Request i uses adapters[i % 4] (index 3: the base model).
  auto adapter_of = [&](int i) -> const LoraAdapter* {
    return i % 4 == 3 ? nullptr : adapters[i % 4].get();
  };
  const std::vector<std::string> texts = {"Lily",
                                          "Once upon a time",
                                          "The cat sat on the mat.",
                                          "Tom",
                                          "One day a dog",
                                          "Mom said",
                                          "The sun",
                                          "Ben and Sue went to the shop."};
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& t : texts) prompts.push_back((*tok)->Encode(t, true, false));
  const int kSteps = 40;
  std::vector<std::vector<int32_t>> alone;
  for (int i = 0; i < 8; ++i)
    alone.push_back(
        testing::GreedyAlone(m.get(), prompts[i], kSteps, adapter_of(i)));
  // Adapters change the continuation of the same prompt.
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(testing::GreedyAlone(m.get(), prompts[0], kSteps, adapter_of(i)),
              testing::GreedyAlone(m.get(), prompts[0], kSteps, nullptr))
        << "adapter " << i;
  }

  // Together: request i arrives at step i and prefills in one chunk while
  // the earlier ones decode.
  testing::Runner r(m.get(), 8, 8);
  for (int i = 0; i < 8; ++i) r.SetAdapter(i, adapter_of(i));
  std::vector<std::vector<int32_t>> together(8);
  std::vector<int32_t> next(8, -1);
  for (int step = 0; step < kSteps + 8; ++step) {
    std::vector<std::pair<int, std::vector<int32_t>>> work;
    for (int i = 0; i < 8; ++i) {
      if (step == i) work.push_back({i, prompts[i]});
      if (step > i && static_cast<int>(together[i].size()) < kSteps)
        work.push_back({i, {together[i].back()}});
    }
    if (work.empty()) break;
    auto rows = r.Step(work);
    for (size_t w = 0; w < work.size(); ++w) {
      const int i = work[w].first;
      if (static_cast<int>(together[i].size()) < kSteps)
        together[i].push_back(testing::Argmax(rows[w]));
    }
  }
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(together[i], alone[i]) << "request " << i;
}

std::string WriteAdapter(
    const std::string& arch,
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors,
    const std::string& type = "adapter") {
  GgufWriter w;
  w.SetString("general.architecture", arch);
  w.SetString("general.type", type);
  w.SetString("adapter.type", "lora");
  w.SetFloat32("adapter.lora.alpha", 8.0f);
  for (const auto& [name, dims] : tensors) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    EXPECT_TRUE(
        w.AddTensor(name, GgmlType::kF32, dims, std::vector<uint8_t>(n * 4, 0))
            .ok());
  }
  static int counter = 0;
  const std::string path =
      absl::StrCat(testing::MakeTempDir(), "/bad", counter++, ".gguf");
  EXPECT_TRUE(w.Write(path).ok());
  return path;
}

TEST(LoraValidationTest, BadAdaptersGetClearErrors) {
  auto f = testing::OpenModel(testing::TestDataPath("models/stories260K.gguf"));
  auto config = ModelConfig::FromGguf(*f);
  ASSERT_TRUE(config.ok());
  // stories260K: width 64, ffn 172, 5 layers, kv dim 32.
  const std::vector<int64_t> a = {64, 4}, b = {4, 64};
  auto load = [&](const std::string& path) {
    auto file = testing::OpenModel(path);
    return LoraAdapter::Load(*file, *config).status();
  };
  EXPECT_THAT(load(WriteAdapter("llama",
                                {{"blk.0.attn_q.weight.lora_a", a},
                                 {"blk.0.attn_q.weight.lora_b", b}},
                                "model")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("general.type must be \"adapter\"")));
  EXPECT_THAT(load(WriteAdapter("qwen2", {{"blk.0.attn_q.weight.lora_a", a},
                                          {"blk.0.attn_q.weight.lora_b", b}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("adapter is for architecture 'qwen2' but the "
                                 "base model is 'llama'")));
  EXPECT_THAT(load(WriteAdapter("llama", {{"blk.0.attn_k.weight.lora_a", a},
                                          {"blk.0.attn_k.weight.lora_b", b}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("do not fit base tensor blk.0.attn_k.weight "
                                 "{64, 32}")));
  EXPECT_THAT(load(WriteAdapter("llama", {{"blk.0.attn_q.weight.lora_a", a}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("blk.0.attn_q.weight.lora_b is missing")));
  EXPECT_THAT(load(WriteAdapter("llama", {{"blk.0.attn_q.weight.lora_b", b}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no .lora_a tensors")));
  EXPECT_THAT(load(WriteAdapter("llama", {{"token_embd.weight.lora_a", a},
                                          {"token_embd.weight.lora_b", b}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("token_embd.weight.lora_a adapts a tensor "
                                 "Lumen cannot adapt")));
  EXPECT_THAT(load(WriteAdapter("llama", {{"blk.9.attn_q.weight.lora_a", a},
                                          {"blk.9.attn_q.weight.lora_b", b}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the base model has 5 layers")));
}

}  // namespace
}  // namespace lumen::engine
