// Every model family against the naive fp64 forward (reference_transformer)
// on synthetic models with random norm weights: llama with Llama-3.1
// rope_freqs and with linear scaling, qwen3 with YaRN and a q width other
// than n_embd, qwen3moe, gemma3 with windows shorter than the sequence,
// phi3 with fused tensors and with LongRoPE at both factor sets. Also: a
// family's sequences batched together equal their solo runs, and bad
// metadata is refused by name.

#include <cmath>
#include <functional>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model_family.h"
#include "engine/model/transformer.h"
#include "gtest/gtest.h"
#include "tests/engine/model_runner.h"
#include "tests/engine/reference_transformer.h"
#include "tests/test_support.h"
#include "tools/synth/synth_model.h"

namespace lumen::engine {
namespace {

using ::testing::HasSubstr;
using testing::OpenModel;
using testing::Runner;

struct FamilyCase {
  std::string name;
  std::function<void(tools::SynthOptions&)> edit;
  int64_t n_ctx = 512;  // serving context (LongRoPE factor choice)
};

std::string Synth(const FamilyCase& c) {
  return testing::SynthTinyModel([&](tools::SynthOptions& o) {
    o.seed = 21;
    o.ctx = 512;
    o.norm_jitter = 0.2;
    // Larger than the default 0.02 so that attention is far from uniform
    // and RoPE, windows and norms move the logits.
    o.weight_std = 0.1;
    c.edit(o);
  });
}

std::vector<int32_t> Tokens(int n) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back((i * 7919 + 13) % 32000);
  return tokens;
}

class FamilyReferenceTest : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(FamilyReferenceTest, EngineMatchesNaiveForward) {
  const FamilyCase& c = GetParam();
  auto f = OpenModel(Synth(c));
  ASSERT_NE(f, nullptr);
  auto m = testing::LoadModel(*f, WeightMode::kF32, 64, c.n_ctx);
  ASSERT_NE(m, nullptr);
  const std::vector<int32_t> tokens = Tokens(40);
  const auto ref = testing::ReferenceLogits(*f, tokens, nullptr, c.n_ctx);

  // A 23-token prompt chunk (longer than one KV block and than gemma3's
  // window), then one token at a time: positions 22..39.
  Runner r(m.get(), 1, 8);
  std::vector<std::vector<float>> got;
  got.push_back(r.Step(
      {{0, std::vector<int32_t>(tokens.begin(), tokens.begin() + 23)}})[0]);
  for (int t = 23; t < 40; ++t) got.push_back(r.Step({{0, {tokens[t]}}})[0]);
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& want = ref[22 + i];
    double max_abs = 0.0, max_diff = 0.0;
    for (size_t v = 0; v < want.size(); ++v) {
      max_abs = std::max(max_abs, std::fabs(want[v]));
      max_diff = std::max(max_diff, std::fabs(want[v] - got[i][v]));
    }
    EXPECT_LE(max_diff, 1e-4 * max_abs) << "position " << 22 + i;
    worst = std::max(worst, max_diff / max_abs);
  }
  std::cout << c.name << " (" << m->config().arch
            << "): worst max|diff|/max|logit| = " << worst << "; rope "
            << m->rope_summary() << "\n";
}

TEST_P(FamilyReferenceTest, SequencesBatchedTogetherEqualTheirSoloRuns) {
  const FamilyCase& c = GetParam();
  auto f = OpenModel(Synth(c));
  ASSERT_NE(f, nullptr);
  auto m = testing::LoadModel(*f, WeightMode::kF32, 64, c.n_ctx);
  ASSERT_NE(m, nullptr);
  const std::vector<int32_t> a = Tokens(30);
  std::vector<int32_t> b(a.rbegin(), a.rend());
  // Alone: 20-token prefill, then 10 single tokens each.
  std::vector<std::vector<float>> solo[2];
  for (int s = 0; s < 2; ++s) {
    const std::vector<int32_t>& toks = s == 0 ? a : b;
    Runner r(m.get(), 1, 4);
    solo[s].push_back(r.Step(
        {{0, std::vector<int32_t>(toks.begin(), toks.begin() + 20)}})[0]);
    for (int t = 20; t < 30; ++t)
      solo[s].push_back(r.Step({{0, {toks[t]}}})[0]);
  }
  // Together: b's prefill shares a step with a's decodes, one step later.
  Runner r(m.get(), 2, 4);
  std::vector<std::vector<float>> batched[2];
  batched[0].push_back(
      r.Step({{0, std::vector<int32_t>(a.begin(), a.begin() + 20)}})[0]);
  auto rows = r.Step(
      {{0, {a[20]}}, {1, std::vector<int32_t>(b.begin(), b.begin() + 20)}});
  batched[0].push_back(rows[0]);
  batched[1].push_back(rows[1]);
  for (int t = 21; t < 30; ++t) {
    rows = r.Step({{1, {b[t - 1]}}, {0, {a[t]}}});
    batched[1].push_back(rows[0]);
    batched[0].push_back(rows[1]);
  }
  batched[1].push_back(r.Step({{1, {b[29]}}})[0]);
  for (int s = 0; s < 2; ++s) {
    ASSERT_EQ(batched[s].size(), solo[s].size());
    for (size_t i = 0; i < solo[s].size(); ++i) {
      double max_abs = 0, max_diff = 0;
      for (size_t v = 0; v < solo[s][i].size(); ++v) {
        max_abs = std::max(max_abs, double(std::fabs(solo[s][i][v])));
        max_diff = std::max(
            max_diff, double(std::fabs(solo[s][i][v] - batched[s][i][v])));
      }
      EXPECT_LE(max_diff, 1e-5 * max_abs) << "sequence " << s << " step " << i;
      EXPECT_EQ(testing::Argmax(batched[s][i]), testing::Argmax(solo[s][i]));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Families, FamilyReferenceTest,
    ::testing::Values(
        FamilyCase{"llama3_rope_freqs",
                   [](tools::SynthOptions& o) { o.llama3_rope = true; }},
        FamilyCase{"llama_linear_x4",
                   [](tools::SynthOptions& o) {
                     o.rope_scaling = "linear";
                     o.rope_factor = 4;
                   }},
        FamilyCase{"qwen3_yarn_wide_q",
                   [](tools::SynthOptions& o) {
                     o.arch = "qwen3";
                     o.head_dim = 32;  // q width 128 for n_embd 64
                     o.rope_scaling = "yarn";
                     o.rope_factor = 4;
                     o.rope_original_ctx = 64;
                   }},
        FamilyCase{"qwen3moe",
                   [](tools::SynthOptions& o) {
                     o.arch = "qwen3moe";
                     o.head_dim = 24;  // the generic attention kernel
                     o.experts = 4;
                     o.experts_used = 2;
                     o.ffn = 32;
                   }},
        FamilyCase{"gemma3_window_8",
                   [](tools::SynthOptions& o) {
                     o.arch = "gemma3";
                     o.layers = 7;  // sliding 0-4, global 5, sliding 6
                     o.heads = 4;
                     o.kv_heads = 1;
                     o.head_dim = 32;
                     o.sliding_window = 8;
                   }},
        FamilyCase{"phi3", [](tools::SynthOptions& o) { o.arch = "phi3"; }},
        FamilyCase{"phi3_longrope_short",
                   [](tools::SynthOptions& o) {
                     o.arch = "phi3";
                     o.ctx = 1024;
                     o.longrope = true;
                     o.rope_original_ctx = 256;
                   },
                   256},
        FamilyCase{"phi3_longrope_long",
                   [](tools::SynthOptions& o) {
                     o.arch = "phi3";
                     o.ctx = 1024;
                     o.longrope = true;
                     o.rope_original_ctx = 256;
                   },
                   512}),
    [](const auto& info) { return info.param.name; });

TEST(FamilyTest, LongRopeFactorsFollowTheServingContext) {
  const std::string path = Synth({"", [](tools::SynthOptions& o) {
                                    o.arch = "phi3";
                                    o.ctx = 1024;
                                    o.longrope = true;
                                    o.rope_original_ctx = 256;
                                  }});
  auto f = OpenModel(path);
  ASSERT_NE(f, nullptr);
  const std::vector<int32_t> tokens = Tokens(40);
  // 300 pads to 512 > 256 (long), like llama.cpp; 256 stays short.
  auto short_model = testing::LoadModel(*f, WeightMode::kF32, 64, 256);
  auto long_model = testing::LoadModel(*f, WeightMode::kF32, 64, 300);
  ASSERT_NE(short_model, nullptr);
  ASSERT_NE(long_model, nullptr);
  EXPECT_THAT(short_model->rope_summary(), HasSubstr("longrope short"));
  EXPECT_THAT(long_model->rope_summary(), HasSubstr("longrope long"));
  Runner rs(short_model.get(), 1, 4), rl(long_model.get(), 1, 4);
  const auto a = rs.Step({{0, tokens}})[0];
  const auto b = rl.Step({{0, tokens}})[0];
  double diff = 0;
  for (size_t v = 0; v < a.size(); ++v)
    diff = std::max(diff, double(std::fabs(a[v] - b[v])));
  EXPECT_GT(diff, 1e-3) << "the factor sets should change the logits";
}

TEST(FamilyTest, SynthLlama3FactorsEqualLlamaCppConverters) {
  // llama3-rope.gguf's rope_freqs came from llama.cpp's converter for head
  // dimension 32 and base 500000.
  auto ref = OpenModel(testing::TestDataPath("archs/llama3-rope.gguf"));
  auto mine = OpenModel(testing::SynthTinyModel([](tools::SynthOptions& o) {
    o.dim = 128;
    o.heads = 4;  // head dim 32
    o.llama3_rope = true;
  }));
  ASSERT_NE(ref, nullptr);
  ASSERT_NE(mine, nullptr);
  const GgufTensorInfo* a = ref->FindTensor("rope_freqs.weight");
  const GgufTensorInfo* b = mine->FindTensor("rope_freqs.weight");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(a->dims, b->dims);
  const auto x = ref->TensorData(*a), y = mine->TensorData(*b);
  for (int64_t i = 0; i < a->dims[0]; ++i) {
    float u, v;
    std::memcpy(&u, x.data() + 4 * i, 4);
    std::memcpy(&v, y.data() + 4 * i, 4);
    EXPECT_NEAR(u, v, 1e-5f * u) << "pair " << i;
  }
}

// Copies `src` without the key `skip`, with `extra` metadata.
std::string WithMetadata(const GgufFile& src,
                         const std::function<void(GgufWriter&)>& extra,
                         absl::string_view skip = "") {
  GgufWriter w;
  for (const auto& kv : src.metadata()) {
    if (kv.key != skip) w.CopyValue(std::string(kv.key), kv.value);
  }
  extra(w);
  for (const auto& t : src.tensors()) {
    auto data = src.TensorData(t);
    EXPECT_TRUE(w.AddTensor(std::string(t.name), t.type, t.dims,
                            std::vector<uint8_t>(data.begin(), data.end()))
                    .ok());
  }
  const std::string path = testing::MakeTempDir() + "/edited.gguf";
  EXPECT_TRUE(w.Write(path).ok());
  return path;
}

TEST(FamilyTest, UnknownRopeScalingAndArchitecturesAreRefusedByName) {
  auto base = OpenModel(testing::SynthTinyModel());
  ASSERT_NE(base, nullptr);
  TransformerOptions o;
  o.measure_crossover = false;
  auto llama3 = OpenModel(WithMetadata(*base, [](GgufWriter& w) {
    w.SetString("llama.rope.scaling.type", "llama3");
  }));
  EXPECT_THAT(Transformer::Load(*llama3, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("llama.rope.scaling.type 'llama3' is not "
                                 "supported (none, linear, yarn, longrope)")));
  auto mamba = OpenModel(WithMetadata(*base, [](GgufWriter& w) {
    w.SetString("general.architecture", "mamba");
    w.SetUint32("mamba.embedding_length", 64);
    w.SetUint32("mamba.block_count", 3);
    w.SetUint32("mamba.attention.head_count", 4);
  }));
  EXPECT_THAT(Transformer::Load(*mamba, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("architecture 'mamba' is not supported "
                                 "(llama, qwen2, qwen2moe, qwen3, qwen3moe, "
                                 "gemma3, phi3)")));
  // gemma3 requires its window, as llama.cpp does.
  auto gemma = OpenModel(testing::SynthTinyModel(
      [](tools::SynthOptions& s) { s.arch = "gemma3"; }));
  auto no_window = OpenModel(WithMetadata(
      *gemma, [](GgufWriter&) {}, "gemma3.attention.sliding_window"));
  EXPECT_THAT(ModelConfig::FromGguf(*no_window),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("gemma3.attention.sliding_window")));
}

TEST(FamilyTest, EveryFamilyHasAttentionAndAnFfnInItsBlock) {
  for (absl::string_view arch :
       {"llama", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "gemma3", "phi3"}) {
    const ModelFamily* f = FindModelFamily(arch);
    ASSERT_NE(f, nullptr) << arch;
    int attention = 0, ffn = 0, residual = 0;
    for (BlockStep s : f->block) {
      attention += s == BlockStep::kAttention;
      ffn += s == BlockStep::kSwiGlu || s == BlockStep::kGeGlu;
      residual += s == BlockStep::kAddToResidual;
    }
    EXPECT_EQ(attention, 1) << arch;
    EXPECT_EQ(ffn, 1) << arch;
    EXPECT_EQ(residual, 2) << arch;
  }
  EXPECT_EQ(FindModelFamily("bert"), nullptr);
}

}  // namespace
}  // namespace lumen::engine
