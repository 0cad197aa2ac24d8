// Generation under constraints: sampled outputs (random logits at
// temperature 1.0 over real vocabularies, and the real stories260K model)
// are checked by independent judges: Python's jsonschema (Debian's
// python3-jsonschema) for JSON Schema, std::regex for regexes and a
// recursive-descent recognizer written here for a grammar. Greedy decoding
// under a constraint that the unconstrained output satisfies changes
// nothing.

#include <cmath>
#include <fstream>
#include <functional>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "engine/constrained/constraint.h"
#include "engine/constrained/constraint_cache.h"
#include "engine/sampler.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/constrained_test_util.h"
#include "tests/engine/model_runner.h"
#include "tests/test_support.h"

namespace lumen::engine::constrained {
namespace {

using ::lumen::testing::LoadVocab;

struct Output {
  std::vector<int32_t> tokens;
  std::string text;
  bool completed = false;  // ended with an end-of-generation token
};

// Samples up to `max_tokens` under the constraint; `logits_for` fills the
// next logits given the tokens so far.
Output Generate(const CompiledConstraint& c, float temperature, uint64_t seed,
                int max_tokens,
                const std::function<void(const std::vector<int32_t>&,
                                         std::vector<float>*)>& logits_for,
                int64_t n_logits) {
  auto state = c.NewState();
  EXPECT_TRUE(state.ok()) << state.status();
  SamplingParams params;
  params.temperature = temperature;
  params.seed = seed;
  SamplerState sampler_state(params);
  Sampler sampler;
  std::vector<float> logits(n_logits);
  std::vector<uint32_t> mask((n_logits + 31) / 32);
  Output out;
  for (int step = 0; step < max_tokens; ++step) {
    logits_for(out.tokens, &logits);
    EXPECT_TRUE(state->FillAllowedMask(mask).ok());
    auto token = sampler.SampleMasked(logits, mask, &sampler_state);
    EXPECT_TRUE(token.ok()) << token.status();
    if (!token.ok()) break;
    EXPECT_TRUE(state->AcceptToken(*token).ok());
    if (c.trie().IsEndOfGeneration(*token)) {
      out.completed = true;
      break;
    }
    out.tokens.push_back(*token);
    out.text += std::string(c.trie().TokenBytes(*token));
  }
  return out;
}

// Random logits, uniform in [0, 8) per token, end-of-generation tokens
// raised by `eos_bias` (they only count where the constraint accepts).
std::function<void(const std::vector<int32_t>&, std::vector<float>*)>
RandomLogits(uint64_t seed, const TokenTrie& trie, float eos_bias) {
  auto rng = std::make_shared<std::mt19937_64>(seed * 7919 + 1);
  return [rng, &trie, eos_bias](const std::vector<int32_t>&,
                                std::vector<float>* logits) {
    for (float& v : *logits) v = static_cast<float>((*rng)() >> 40) * 0x1p-21f;
    for (int32_t e : trie.end_of_generation()) (*logits)[e] += eos_bias;
  };
}

// Python's jsonschema on every output; the report is empty when all are
// valid JSON documents that validate.
std::string ValidateWithPython(const std::string& schema,
                               const std::vector<std::string>& outputs) {
  const std::string dir = testing::MakeTempDir();
  std::ofstream(dir + "/schema.json") << schema;
  std::ofstream(dir + "/outputs.json") << nlohmann::json(outputs).dump(
      -1, ' ', false, nlohmann::json::error_handler_t::strict);
  std::ofstream(dir + "/validate.py") << R"(import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
outputs = json.load(open(sys.argv[2]))
validator = jsonschema.Draft202012Validator(schema)
validator.check_schema(schema)
bad = 0
for i, text in enumerate(outputs):
    try:
        doc = json.loads(text)
    except ValueError as e:
        print(f"output {i} is not JSON ({e}): {text!r}")
        bad += 1
        continue
    for err in validator.iter_errors(doc):
        print(f"output {i} fails at {list(err.absolute_path)}: {err.message}: {text!r}")
        bad += 1
        break
sys.exit(1 if bad else 0)
)";
  const testing::CommandResult r =
      testing::RunCommand("/usr/bin/python3 " + dir + "/validate.py " + dir +
                          "/schema.json " + dir + "/outputs.json");
  if (r.exit_code == 0) return "";
  return r.out + r.err + " (exit " + std::to_string(r.exit_code) + ")";
}

constexpr char kNestedSchema[] = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "score": {"type": "number", "minimum": -1, "maximum": 1},
    "tags": {"type": "array", "maxItems": 3,
             "items": {"enum": ["red", "green", "blue"]}},
    "address": {
      "type": "object",
      "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 8},
        "zip": {"type": "string", "pattern": "^[0-9]{5}$"}
      },
      "required": ["city"],
      "additionalProperties": false
    },
    "kind": {"oneOf": [{"type": "null"}, {"type": "boolean"},
                       {"const": "other"}]},
    "ids": {"type": "array", "items": {"$ref": "#/$defs/id"},
            "minItems": 1, "maxItems": 2}
  },
  "required": ["name", "age", "address"],
  "additionalProperties": false,
  "$defs": {"id": {"type": "integer", "minimum": -50, "maximum": 5000}}
})";

class JsonSchemaGenerationTest : public ::testing::TestWithParam<std::string> {
};

TEST_P(JsonSchemaGenerationTest, HundredSeedsValidateWithPythonJsonschema) {
  auto tokenizer = LoadVocab(GetParam());
  ASSERT_NE(tokenizer, nullptr);
  ConstraintCache cache(*tokenizer);
  auto c = cache.Get({ConstraintKind::kJsonSchema, kNestedSchema});
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<std::string> outputs;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    // Every string, number and array is bounded: each run must complete.
    const Output out =
        Generate(**c, 1.0f, seed, 400, RandomLogits(seed, *cache.trie(), 0.0f),
                 tokenizer->vocab().size());
    ASSERT_TRUE(out.completed) << "seed " << seed << ": " << out.text;
    outputs.push_back(out.text);
  }
  EXPECT_EQ(ValidateWithPython(kNestedSchema, outputs), "");
  if (GetParam() == "llama-spm") {
    // The judge itself notices a bad document.
    EXPECT_NE(ValidateWithPython(kNestedSchema, {R"({"name":"x","age":3})"}),
              "");
    std::printf("sample output: %s\n",
                nlohmann::json(outputs[0]).dump().c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, JsonSchemaGenerationTest,
                         ::testing::Values("llama-spm", "gpt-2"));

TEST(RegexGenerationTest, HundredSeedsFullMatchStdRegex) {
  auto tokenizer = LoadVocab("deepseek-llm");
  ASSERT_NE(tokenizer, nullptr);
  ConstraintCache cache(*tokenizer);
  for (const std::string regex : {"[A-Z][a-z]{1,8}( [a-z]{1,6}){0,3}[.!?]",
                                  "(\\d{3}-\\d{4}|\\(\\d{3}\\) \\d{3}-\\d{4})",
                                  "(yes|no|maybe)(, (yes|no|maybe)){0,2}"}) {
    auto c = cache.Get({ConstraintKind::kRegex, regex});
    ASSERT_TRUE(c.ok()) << c.status();
    const std::regex reference(regex, std::regex::ECMAScript);
    for (uint64_t seed = 0; seed < 100; ++seed) {
      const Output out =
          Generate(**c, 1.0f, seed, 64, RandomLogits(seed, *cache.trie(), 0.0f),
                   tokenizer->vocab().size());
      ASSERT_TRUE(out.completed) << regex << " seed " << seed;
      EXPECT_TRUE(std::regex_match(out.text, reference))
          << regex << " seed " << seed << ": " << out.text;
    }
  }
}

// A recognizer for the arithmetic grammar below, written apart from it.
class Arithmetic {
 public:
  static bool Recognize(const std::string& s) {
    Arithmetic a(s);
    return a.Expr(0) && a.pos_ == s.size();
  }

 private:
  explicit Arithmetic(const std::string& s) : s_(s) {}
  bool Expr(int depth) {
    if (!Term(depth)) return false;
    while (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
      ++pos_;
      if (!Term(depth)) return false;
    }
    return true;
  }
  bool Term(int depth) {
    if (!Factor(depth)) return false;
    while (pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/')) {
      ++pos_;
      if (!Factor(depth)) return false;
    }
    return true;
  }
  bool Factor(int depth) {
    if (pos_ < s_.size() && s_[pos_] == '(') {
      ++pos_;
      if (depth > 100 || !Expr(depth + 1)) return false;
      if (pos_ >= s_.size() || s_[pos_] != ')') return false;
      ++pos_;
      return true;
    }
    size_t digits = 0;
    while (pos_ < s_.size() && isdigit(static_cast<unsigned char>(s_[pos_]))) {
      ++pos_;
      ++digits;
    }
    return digits >= 1 && digits <= 3;
  }
  const std::string& s_;
  size_t pos_ = 0;
};

TEST(GrammarGenerationTest, HundredSeedsParseWithAnIndependentRecognizer) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  ConstraintCache cache(*tokenizer);
  auto c = cache.Get({ConstraintKind::kGrammar, R"g(# arithmetic
root   ::= expr
expr   ::= term ([-+] term)*
term   ::= factor ([*/] factor)*
factor ::= [0-9]{1,3} | "(" expr ")"
)g"});
  ASSERT_TRUE(c.ok()) << c.status();
  int completed = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    // EOS gets a lift so that most runs end within the token budget.
    const Output out =
        Generate(**c, 1.0f, seed, 200, RandomLogits(seed, *cache.trie(), 4.0f),
                 tokenizer->vocab().size());
    if (!out.completed) continue;
    ++completed;
    EXPECT_TRUE(Arithmetic::Recognize(out.text))
        << "seed " << seed << ": " << out.text;
  }
  EXPECT_GE(completed, 90);
}

// stories260K through the model: real logits.
class Stories260KTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ =
        testing::OpenModel(testing::TestDataPath("models/stories260K.gguf"));
    ASSERT_NE(file_, nullptr);
    model_ = testing::LoadModel(*file_, WeightMode::kF32);
    ASSERT_NE(model_, nullptr);
    auto tokenizer = Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(tokenizer.ok());
    tokenizer_ = std::move(*tokenizer);
    cache_ = std::make_unique<ConstraintCache>(*tokenizer_);
  }

  // Logits of the model after BOS and the tokens so far, one step at a time.
  std::function<void(const std::vector<int32_t>&, std::vector<float>*)>
  ModelLogits() {
    auto runner = std::make_shared<testing::Runner>(model_.get(), 1, 32);
    auto fed = std::make_shared<size_t>(0);
    return [this, runner, fed](const std::vector<int32_t>& tokens,
                               std::vector<float>* logits) {
      std::vector<int32_t> feed;
      if (tokens.empty()) feed.push_back(tokenizer_->vocab().bos);
      feed.insert(feed.end(), tokens.begin() + *fed, tokens.end());
      *fed = tokens.size();
      *logits = runner->Step({{0, feed}})[0];
    };
  }

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Transformer> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ConstraintCache> cache_;
};

TEST_F(Stories260KTest, GreedyUnderASatisfiedConstraintIsUnchanged) {
  const int kSteps = 80;
  const std::vector<int32_t> free =
      testing::GreedyAlone(model_.get(), {tokenizer_->vocab().bos}, kSteps);
  std::string text;
  for (int32_t t : free) text += tokenizer_->TokenToPiece(t);
  ASSERT_EQ(text.substr(0, 17), " Once upon a time");
  // Constraints the greedy text satisfies (as a prefix: generation stops at
  // kSteps tokens), each far from allowing everything.
  const std::vector<ConstraintSpec> specs = {
      {ConstraintKind::kRegex, " Once upon a time, [A-Za-z ,.!'\"\n]+"},
      {ConstraintKind::kGrammar,
       "root ::= \" Once\" sentence+\nsentence ::= [^0-9{}<>]+ [.!?]"},
  };
  for (const ConstraintSpec& spec : specs) {
    auto c = cache_->Get(spec);
    ASSERT_TRUE(c.ok()) << c.status();
    const Output out =
        Generate(**c, 0.0f, 1, kSteps, ModelLogits(), model_->config().n_vocab);
    EXPECT_EQ(out.tokens, free) << spec.text;
  }
  // A constraint the greedy text does not satisfy changes it.
  auto upper = cache_->Get({ConstraintKind::kRegex, "[A-Z ]+"});
  ASSERT_TRUE(upper.ok());
  const Output out =
      Generate(**upper, 0.0f, 1, 20, ModelLogits(), model_->config().n_vocab);
  EXPECT_NE(out.tokens, std::vector<int32_t>(free.begin(), free.begin() + 20));
  EXPECT_TRUE(std::regex_match(out.text, std::regex("[A-Z ]+"))) << out.text;
}

TEST_F(Stories260KTest, HundredSeedsValidateWithPythonJsonschema) {
  const std::string schema = R"({
    "type": "object",
    "properties": {
      "hero": {"type": "string", "minLength": 1, "maxLength": 10},
      "mood": {"enum": ["happy", "sad"]},
      "friends": {"type": "array", "items": {"type": "string", "maxLength": 6},
                  "maxItems": 2},
      "age": {"type": "integer", "minimum": 1, "maximum": 9}
    },
    "required": ["hero", "mood"],
    "additionalProperties": false
  })";
  auto c = cache_->Get({ConstraintKind::kJsonSchema, schema});
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<std::string> outputs;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    const Output out =
        Generate(**c, 1.0f, seed, 300, ModelLogits(), model_->config().n_vocab);
    ASSERT_TRUE(out.completed) << "seed " << seed << ": " << out.text;
    outputs.push_back(out.text);
  }
  EXPECT_EQ(ValidateWithPython(schema, outputs), "");
}

}  // namespace
}  // namespace lumen::engine::constrained
