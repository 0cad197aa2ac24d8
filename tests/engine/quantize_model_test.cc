// `lumen model quantize` (tools/quantize): on the f32 model llama.cpp
// quantized for ../shared/testdata/quants, every preset reproduces
// llama-quantize's tensor type mix, the output loads and runs in the engine,
// and its RMS error per type against the f32 weights is reported next to
// the error of llama.cpp's file of the same preset.

#include "tools/quantize/quantize_model.h"

#include <cmath>
#include <fstream>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/gguf/ggml_type.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/model_runner.h"
#include "tests/engine/naive_quants.h"
#include "tests/test_support.h"

namespace lumen::tools {
namespace {

using json = nlohmann::json;

const json& Reference() {
  static const json* ref = [] {
    std::ifstream in(testing::TestDataPath("quants/reference.json"));
    return new json(json::parse(in));
  }();
  return *ref;
}

struct PresetCase {
  std::string preset;  // our --type
  bool pure;
  std::string reference;  // llama.cpp's file of the same preset
};

// Relative RMS error, per tensor type, of `q` against the f32 `base`.
std::map<std::string, std::pair<double, double>> ErrorsByType(
    const engine::GgufFile& base, const engine::GgufFile& q) {
  std::map<std::string, std::pair<double, double>> sums;  // err^2, x^2
  for (const engine::GgufTensorInfo& t : q.tensors()) {
    if (t.type == engine::GgmlType::kF32) continue;
    const engine::GgufTensorInfo* b = base.FindTensor(t.name);
    const auto want = testing::NaiveDequantize(
        b->type, base.TensorData(*b).data(), b->num_elements);
    const auto got = testing::NaiveDequantize(t.type, q.TensorData(t).data(),
                                              t.num_elements);
    auto& [err, ref] = sums[engine::GgmlTypeName(t.type)];
    for (size_t i = 0; i < want.size(); ++i) {
      err += (got[i] - want[i]) * (got[i] - want[i]);
      ref += want[i] * want[i];
    }
  }
  std::map<std::string, std::pair<double, double>> out;
  for (const auto& [type, s] : sums)
    out[type] = {std::sqrt(s.first / s.second), 0};
  return out;
}

class QuantizePresetTest : public ::testing::TestWithParam<PresetCase> {};

TEST_P(QuantizePresetTest, MatchesLlamaQuantizeMixAndError) {
  const PresetCase& c = GetParam();
  const json& ref = Reference()["files"][c.reference];
  const json& base_ref = Reference()["files"][ref["base"].get<std::string>()];
  auto base = testing::OpenModel(testing::TestDataPath(
      absl::StrCat("quants/", base_ref["path"].get<std::string>())));
  ASSERT_NE(base, nullptr);
  const std::string out = testing::MakeTempDir() + "/out.gguf";
  auto report = QuantizeModel(*base, out, {c.preset, c.pure, false});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->file_type, ref["general.file_type"].get<uint32_t>());
  for (const auto& [name, type] : report->tensor_types) {
    EXPECT_EQ(absl::AsciiStrToUpper(engine::GgmlTypeName(type)),
              absl::AsciiStrToUpper(
                  ref["tensor_type_by_name"][name].get<std::string>()))
        << name;
  }
  // The file loads and runs (greedy from the reference's prompt).
  auto q = testing::OpenModel(out);
  ASSERT_NE(q, nullptr);
  auto m = testing::LoadModel(*q, engine::WeightMode::kAuto);
  ASSERT_NE(m, nullptr);
  const std::vector<int32_t> prompt = ref["cases"][0]["prompt_ids"];
  EXPECT_EQ(testing::GreedyAlone(m.get(), prompt, 4).size(), 4u);
  // RMS error per type against the f32 weights: ours next to llama.cpp's.
  auto llama = testing::OpenModel(testing::TestDataPath(
      absl::StrCat("quants/", ref["path"].get<std::string>())));
  const auto ours = ErrorsByType(*base, *q);
  const auto theirs = ErrorsByType(*base, *llama);
  for (const auto& [type, e] : ours) {
    const double llama_err = theirs.at(type).first;
    std::cout << c.preset << (c.pure ? " --pure" : "") << " " << type
              << ": relative RMS error " << e.first << " (llama.cpp "
              << llama_err << ", ratio " << e.first / llama_err << ")\n";
    // Within 10% of llama.cpp's quantizer (same algorithm for the legacy
    // types; our own scale searches for the others).
    EXPECT_LE(e.first, 1.10 * llama_err) << type;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Presets, QuantizePresetTest,
    ::testing::Values(PresetCase{"q4_k_m", false, "tiny-Q4_K_M.gguf"},
                      PresetCase{"q5_k_m", false, "tiny-Q5_K_M.gguf"},
                      PresetCase{"q3_k_m", false, "tiny-Q3_K_M.gguf"},
                      PresetCase{"q2_k", false, "tiny-Q2_K.gguf"},
                      PresetCase{"q6_k", false, "tiny-Q6_K.gguf"},
                      PresetCase{"q8_0", false, "tiny-Q8_0.gguf"},
                      PresetCase{"q4_0", false, "tiny-Q4_0.gguf"},
                      PresetCase{"q4_1", false, "tiny-Q4_1.gguf"},
                      PresetCase{"q5_0", false, "tiny-Q5_0.gguf"},
                      PresetCase{"q5_1", false, "tiny-Q5_1.gguf"},
                      PresetCase{"iq4_nl", false, "tiny-IQ4_NL.gguf"},
                      PresetCase{"iq4_xs", false, "tiny-IQ4_XS.gguf"},
                      PresetCase{"q4_k_m", true, "tiny-Q4_K-pure.gguf"},
                      PresetCase{"q2_k", true, "tiny-Q2_K-pure.gguf"},
                      PresetCase{"q3_k_m", true, "tiny-Q3_K-pure.gguf"},
                      PresetCase{"q5_k_m", true, "tiny-Q5_K-pure.gguf"},
                      PresetCase{"iq4_xs", true, "tiny-IQ4_XS-pure.gguf"},
                      PresetCase{"q4_k_m", false, "stories260K-Q4_K_M.gguf"}),
    [](const auto& info) {
      std::string n =
          absl::StrCat(info.param.preset, info.param.pure ? "_pure" : "", "_",
                       info.param.reference);
      for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

TEST(QuantizeModelTest, UnknownPresetAndRequantizeAreRefused) {
  auto base =
      testing::OpenModel(testing::TestDataPath("quants/tiny-Q4_0.gguf"));
  const std::string out = testing::MakeTempDir() + "/out.gguf";
  EXPECT_THAT(QuantizeModel(*base, out, {"q9_k", false, false}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("unknown --type 'q9_k'")));
  EXPECT_THAT(QuantizeModel(*base, out, {"q8_0", false, false}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("--allow-requantize")));
  EXPECT_TRUE(QuantizeModel(*base, out, {"q8_0", false, true}).ok());
}

}  // namespace
}  // namespace lumen::tools
