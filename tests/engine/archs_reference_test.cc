// The engine against llama.cpp on ../shared/testdata/archs/: for every file
// (llama with Llama-3.1 rope_freqs, qwen3, gemma3, phi3, phi3 with LongRoPE
// at two context sizes) and every prompt, the 32 greedy ids exactly and the
// top-8 probabilities within the README's tolerance (1e-4; gemma3 2e-2,
// whose GELU llama.cpp takes from an fp16 table), once for each sequence
// alone and once with eight sequences sharing every step (staggered
// arrivals, prompts prefilled in chunks beside other sequences' decodes).

#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/model_runner.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

using Json = nlohmann::json;
using testing::Argmax;
using testing::OpenModel;
using testing::Runner;

const Json& Reference() {
  static const Json* json = [] {
    std::ifstream in(testing::TestDataPath("archs/reference.json"));
    return new Json(Json::parse(in));
  }();
  return *json;
}

struct Case {
  std::string prompt;
  int64_t n_ctx;
  std::vector<int32_t> prompt_ids, ids;
  // top[k]: the 8 (id, probability) pairs of step k.
  std::vector<std::vector<std::pair<int32_t, double>>> top;
};

std::vector<Case> CasesOf(const std::string& file) {
  std::vector<Case> cases;
  for (const Json& c : Reference()["files"][file]["cases"]) {
    Case k;
    k.prompt = c["prompt"];
    k.n_ctx = c["n_ctx"];
    k.prompt_ids = c["prompt_ids"].get<std::vector<int32_t>>();
    k.ids = c["ids"].get<std::vector<int32_t>>();
    for (const Json& step : c["top"]) {
      k.top.emplace_back();
      for (const Json& pair : step)
        k.top.back().push_back({pair[0].get<int32_t>(), pair[1].get<double>()});
    }
    cases.push_back(std::move(k));
  }
  return cases;
}

std::vector<double> Softmax(const std::vector<float>& logits) {
  const double mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i)
    sum += (p[i] = std::exp(logits[i] - mx));
  for (double& v : p) v /= sum;
  return p;
}

struct Outcome {
  std::vector<int32_t> ids;
  double worst_dp = 0;  // largest |p_engine - p_llama.cpp| over top-8s
};

// Checks the distribution of step k of `c` and extends `o` by its argmax.
void Record(const Case& c, const std::vector<float>& logits, Outcome* o) {
  const size_t k = o->ids.size();
  const std::vector<double> p = Softmax(logits);
  if (k < c.top.size()) {
    for (const auto& [id, want] : c.top[k])
      o->worst_dp = std::max(o->worst_dp, std::fabs(p[id] - want));
  }
  o->ids.push_back(Argmax(logits));
}

std::unique_ptr<Transformer> Load(const GgufFile& f, int64_t n_ctx) {
  TransformerOptions o;
  o.weights = WeightMode::kF32;
  o.max_batch_tokens = 64;
  o.max_context = n_ctx;
  o.measure_crossover = false;
  auto m = Transformer::Load(f, o);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

struct FileCase {
  std::string file;
  double tolerance;
};

class ArchsReferenceTest : public ::testing::TestWithParam<FileCase> {};

TEST_P(ArchsReferenceTest, GreedyIdsAndTopProbabilitiesAlone) {
  const FileCase& fc = GetParam();
  auto f = OpenModel(testing::TestDataPath("archs/" + fc.file));
  ASSERT_NE(f, nullptr);
  std::map<int64_t, std::unique_ptr<Transformer>> models;  // by n_ctx
  for (const Case& c : CasesOf(fc.file)) {
    auto& m = models[c.n_ctx];
    if (!m) m = Load(*f, c.n_ctx);
    ASSERT_NE(m, nullptr);
    Runner r(m.get(), 1, 4);
    Outcome o;
    std::vector<float> logits = r.Step({{0, c.prompt_ids}})[0];
    while (o.ids.size() < c.ids.size()) {
      Record(c, logits, &o);
      logits = r.Step({{0, {o.ids.back()}}})[0];
    }
    EXPECT_EQ(o.ids, c.ids) << "'" << c.prompt << "' n_ctx " << c.n_ctx;
    EXPECT_LE(o.worst_dp, fc.tolerance)
        << "'" << c.prompt << "' n_ctx " << c.n_ctx;
    std::cout << fc.file << " '" << c.prompt << "' n_ctx " << c.n_ctx
              << ": max |dp| " << o.worst_dp << "\n";
  }
}

TEST_P(ArchsReferenceTest, EachSequenceOfABatchOfEightMatchesLlamaCpp) {
  const FileCase& fc = GetParam();
  auto f = OpenModel(testing::TestDataPath("archs/" + fc.file));
  ASSERT_NE(f, nullptr);
  std::map<int64_t, std::vector<Case>> by_ctx;
  for (Case& c : CasesOf(fc.file)) by_ctx[c.n_ctx].push_back(std::move(c));
  for (const auto& [n_ctx, cases] : by_ctx) {
    auto m = Load(*f, n_ctx);
    ASSERT_NE(m, nullptr);
    // Eight sequences: every case twice, the second copy arriving later.
    constexpr int kSeqs = 8;
    Runner r(m.get(), kSeqs, 4);
    std::vector<const Case*> seq_case(kSeqs);
    std::vector<size_t> prefilled(kSeqs, 0);
    std::vector<Outcome> out(kSeqs);
    for (int s = 0; s < kSeqs; ++s) seq_case[s] = &cases[s % cases.size()];
    for (int step = 0; step < 120; ++step) {
      std::vector<std::pair<int, std::vector<int32_t>>> work;
      std::vector<int> who;  // sequence whose logits row is sampled, or -1
      for (int s = 0; s < kSeqs; ++s) {
        const Case& c = *seq_case[s];
        if (step < 2 * s) continue;  // arrives later
        if (prefilled[s] < c.prompt_ids.size()) {
          // Chunks of 3: a prompt spans steps and shares them with decodes.
          const size_t n =
              std::min<size_t>(3, c.prompt_ids.size() - prefilled[s]);
          work.push_back({s, std::vector<int32_t>(
                                 c.prompt_ids.begin() + prefilled[s],
                                 c.prompt_ids.begin() + prefilled[s] + n)});
          prefilled[s] += n;
          who.push_back(prefilled[s] == c.prompt_ids.size() ? s : -1);
        } else if (out[s].ids.size() < c.ids.size()) {
          work.push_back({s, {out[s].ids.back()}});
          who.push_back(s);
        }
      }
      if (work.empty()) continue;
      const auto rows = r.Step(work);
      for (size_t i = 0; i < rows.size(); ++i) {
        if (who[i] >= 0 &&
            out[who[i]].ids.size() < seq_case[who[i]]->ids.size())
          Record(*seq_case[who[i]], rows[i], &out[who[i]]);
      }
    }
    for (int s = 0; s < kSeqs; ++s) {
      EXPECT_EQ(out[s].ids, seq_case[s]->ids)
          << "sequence " << s << " '" << seq_case[s]->prompt << "' n_ctx "
          << n_ctx;
      EXPECT_LE(out[s].worst_dp, fc.tolerance) << "sequence " << s;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Files, ArchsReferenceTest,
                         ::testing::Values(FileCase{"llama3-rope.gguf", 1e-4},
                                           FileCase{"qwen3.gguf", 1e-4},
                                           FileCase{"gemma3.gguf", 2e-2},
                                           FileCase{"phi3.gguf", 1e-4},
                                           FileCase{"phi3-longrope.gguf",
                                                    1e-4}),
                         [](const auto& info) {
                           std::string name = info.param.file.substr(
                               0, info.param.file.find('.'));
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

}  // namespace
}  // namespace lumen::engine
