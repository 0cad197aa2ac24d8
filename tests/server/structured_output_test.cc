// Structured output end to end: a real lumend (stories260K, and a small
// synthetic llama over the 32k llama SPM vocabulary made with `lumen model
// synth`) called over gRPC with json_schema, regex, grammar and json_object
// constraints. Outputs are judged independently of the constraint library
// by tests/server/structured_judge.py: Debian's python3-jsonschema for
// schemas, Python's re.fullmatch for regexes and a recursive-descent parser
// written there for the grammar.

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "lumen/v1/admin.grpc.pb.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/server/daemon_process.h"
#include "tests/test_support.h"

namespace lumen {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;
using v1::GenerateRequest;
using v1::GenerateResponse;

constexpr char kPrompt[] = "Once upon a time";

// Nested, every part bounded (strings, numbers, arrays), so every output
// completes within max_tokens.
constexpr char kSchema[] = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 10},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "score": {"type": "number", "minimum": -1, "maximum": 1},
    "colors": {"type": "array", "maxItems": 3,
               "items": {"enum": ["red", "green", "blue"]}},
    "home": {
      "type": "object",
      "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 8},
        "zip": {"type": "string", "pattern": "^[0-9]{5}$"}
      },
      "required": ["city"],
      "additionalProperties": false
    },
    "pet": {"anyOf": [{"type": "null"}, {"type": "boolean"},
                      {"$ref": "#/$defs/pet"}]},
    "id": {"type": "string", "format": "uuid"}
  },
  "required": ["name", "age", "home"],
  "additionalProperties": false,
  "$defs": {
    "pet": {"type": "object",
            "properties": {"kind": {"const": "cat"},
                           "legs": {"type": "integer", "minimum": 3,
                                    "maximum": 4}},
            "required": ["kind", "legs"]}
  }
})";

constexpr char kRegex[] =
    R"(\d{3}-\d{4}|[A-Z][a-z]{1,8}( [a-z]{1,6}){0,3}[.!?]|(yes|no)(, (yes|no)){0,2})";

// Small s-expressions two levels deep; structured_judge.py's "sexpr"
// recognizes the same language.
constexpr char kGrammar[] = R"gbnf(# s-expressions
root   ::= "(" item (" " item){0,3} ")"
item   ::= atom | "(" atom (" " atom){0,3} ")"
atom   ::= word | number | quoted
word   ::= [a-z] [a-z0-9_\-]{0,4}
number ::= "-"? ([1-9] [0-9]{0,2} | "0")
quoted ::= "'" [^'\\\n()]{0,4} "'"
)gbnf";

// A model the tests run on: stories260K (512 tokens) or the synthetic
// llama over the llama SPM vocabulary (32000 tokens, byte fallback).
std::vector<std::string> DaemonArgs(const std::string& model) {
  std::vector<std::string> args = {"--kv-cache-mb=128", "--threads=2",
                                   "--max-running=100"};
  if (model == "stories260K") {
    args.push_back("--model=" +
                   testing::TestDataPath("models/stories260K.gguf"));
    args.push_back("--ctx-size=512");
  } else {
    const std::string path = testing::MakeTempDir() + "/synth.gguf";
    const testing::CommandResult r = testing::RunCommand(absl::StrCat(
        testing::BinPath("lumen"),
        " model synth --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 "
        "--ffn 128 --ctx 1024 --seed 5 --vocab-from ",
        testing::TestDataPath("vocab/ggml-vocab-llama-spm.gguf"), " ", path));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    args.push_back("--model=synth=" + path);
    args.push_back("--ctx-size=1024");
  }
  // Both models' weights are fp32: a prompt step of 16 or more tokens runs
  // oneDNN, whose rounding differs from the small-M kernel's in the last
  // bits, so a batched run's keys can differ from a solo run's by an ulp.
  // An fp16 cache (the default) sometimes turns that into a flipped token
  // within the 400 tokens below (1 run in 9 here); an fp32 cache has not.
  // Packed (GGUF-quantized) weights are bit-identical at every M.
  args.push_back("--kv-cache-type=f32");
  return args;
}

struct Result {
  grpc::Status status;
  GenerateResponse response;
};

// Sends all requests at once (one thread each) so the engine batches them.
std::vector<Result> GenerateConcurrently(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::vector<GenerateRequest>& requests) {
  auto stub = v1::Inference::NewStub(channel);
  std::vector<Result> results(requests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext ctx;
      results[i].status =
          stub->Generate(&ctx, requests[i], &results[i].response);
    });
  }
  for (std::thread& t : threads) t.join();
  return results;
}

Result GenerateOne(const std::shared_ptr<grpc::Channel>& channel,
                   const GenerateRequest& request) {
  return GenerateConcurrently(channel, {request})[0];
}

std::vector<int32_t> Ids(const GenerateResponse& r) {
  return {r.token_ids().begin(), r.token_ids().end()};
}

GenerateRequest Request(float temperature, uint64_t seed, int max_tokens) {
  GenerateRequest req;
  req.set_prompt(kPrompt);
  req.set_return_token_ids(true);
  req.mutable_sampling()->set_temperature(temperature);
  req.mutable_sampling()->set_seed(seed);
  req.mutable_sampling()->set_max_tokens(max_tokens);
  return req;
}

// Runs structured_judge.py on the outputs.
testing::CommandResult Judge(const std::string& kind, const std::string& spec,
                             const std::vector<std::string>& outputs) {
  const std::string dir = testing::MakeTempDir();
  std::ofstream(dir + "/spec") << spec;
  std::ofstream(dir + "/outputs.json") << nlohmann::json(outputs).dump();
  // Debian's python3 (python3-jsonschema); another python3 on PATH may lack
  // it.
  return testing::RunCommand(absl::StrCat("/usr/bin/python3 ", LUMEN_SOURCE_DIR,
                                          "/tests/server/structured_judge.py ",
                                          kind, " ", dir, "/spec ", dir,
                                          "/outputs.json"));
}

v1::ModelStats Stats(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext ctx;
  v1::GetStatsResponse resp;
  EXPECT_TRUE(v1::Admin::NewStub(channel)
                  ->GetStats(&ctx, v1::GetStatsRequest(), &resp)
                  .ok());
  return resp.models_size() > 0 ? resp.models(0) : v1::ModelStats();
}

// Polls (bounded, about 5 s) until the model's stats satisfy `done`.
bool StatsReach(const std::shared_ptr<grpc::Channel>& channel,
                const std::function<bool(const v1::ModelStats&)>& done) {
  for (int i = 0; i < 1000; ++i) {
    if (done(Stats(channel))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

class StructuredOutputTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(DaemonArgs(GetParam()));
    ASSERT_TRUE(daemon_->ok()) << daemon_->Log();
  }

  // 100 requests, seeds 0..99 at temperature 1.0, each completing under its
  // constraint; the judge accepts every output, and refuses a damaged one.
  void ExpectHundredSeedsJudged(
      const std::string& judge_kind, const std::string& spec, int max_tokens,
      const std::function<void(v1::SamplingParams*)>& constrain) {
    std::vector<GenerateRequest> requests;
    for (uint64_t seed = 0; seed < 100; ++seed) {
      requests.push_back(Request(1.0f, seed, max_tokens));
      constrain(requests.back().mutable_sampling());
    }
    const std::vector<Result> results =
        GenerateConcurrently(daemon_->Channel(), requests);
    std::vector<std::string> outputs;
    for (size_t i = 0; i < results.size(); ++i) {
      ASSERT_TRUE(results[i].status.ok())
          << "seed " << i << ": " << results[i].status.error_message();
      // "stop": the constraint completed (nothing was cut by max_tokens).
      EXPECT_EQ(results[i].response.finish_reason(), "stop")
          << "seed " << i << ": " << results[i].response.text();
      outputs.push_back(results[i].response.text());
    }
    const testing::CommandResult judged = Judge(judge_kind, spec, outputs);
    EXPECT_EQ(judged.exit_code, 0) << judged.out << judged.err;
    EXPECT_THAT(judged.out, HasSubstr("100 of 100 valid"));
    // Sampling at temperature 1.0 with different seeds gives different
    // outputs: the constraint masks, it does not dictate. (stories260K
    // answers the regex's "yes"/"no" branch most of the time.)
    EXPECT_GE(std::set<std::string>(outputs.begin(), outputs.end()).size(),
              10u);
    std::printf("%s on %s, seed 0: %s\n", judge_kind.c_str(),
                GetParam().c_str(), nlohmann::json(outputs[0]).dump().c_str());
    // Every output ends in an ASCII character: dropping it breaks it.
    outputs[0].pop_back();
    const testing::CommandResult damaged = Judge(judge_kind, spec, outputs);
    EXPECT_EQ(damaged.exit_code, 1) << damaged.out;
    EXPECT_THAT(damaged.out, HasSubstr("99 of 100 valid"));
  }

  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_P(StructuredOutputTest, HundredSeedsOfAJsonSchemaValidateWithJsonschema) {
  ExpectHundredSeedsJudged(
      "json_schema", kSchema, GetParam() == "stories260K" ? 480 : 600,
      [](v1::SamplingParams* s) { s->set_json_schema(kSchema); });
}

TEST_P(StructuredOutputTest, HundredSeedsOfARegexFullMatch) {
  ExpectHundredSeedsJudged("regex", kRegex, 64,
                           [](v1::SamplingParams* s) { s->set_regex(kRegex); });
}

TEST_P(StructuredOutputTest, HundredSeedsOfAGrammarParse) {
  ExpectHundredSeedsJudged("sexpr", "", 400, [](v1::SamplingParams* s) {
    s->set_grammar(kGrammar);
  });
}

// The code points of a UTF-8 text, each as its bytes.
std::vector<std::string> CodePoints(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = text[i];
    const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

// `cp` as a regex atom (inside a class when `in_class`).
std::string RegexEscape(const std::string& cp, bool in_class) {
  if (cp == "\n") return "\\n";
  if (cp == "\t") return "\\t";
  if (cp == "\r") return "\\r";
  if (cp.size() == 1 && static_cast<unsigned char>(cp[0]) < 0x20)
    return absl::StrFormat("\\x%02x", cp[0]);
  const std::string special = in_class ? "\\]^-[" : "\\.^$|?*+()[]{}";
  if (cp.size() == 1 && special.find(cp[0]) != std::string::npos)
    return "\\" + cp;
  return cp;
}

// `text` as a GBNF string literal.
std::string GbnfLiteral(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

TEST_P(StructuredOutputTest, GreedyUnderASatisfiedConstraintKeepsItsTokens) {
  const GenerateRequest free = Request(0.0f, 1, 32);
  const Result reference = GenerateOne(daemon_->Channel(), free);
  ASSERT_TRUE(reference.status.ok()) << reference.status.error_message();
  const std::string text = reference.response.text();
  ASSERT_FALSE(text.empty());
  std::string literal, klass;
  std::set<std::string> seen;
  for (const std::string& cp : CodePoints(text)) {
    literal += RegexEscape(cp, false);
    if (seen.insert(cp).second) klass += RegexEscape(cp, true);
  }
  struct Case {
    std::string name;
    std::function<void(v1::SamplingParams*)> constrain;
  };
  const std::vector<Case> cases = {
      {"regex of the exact text",
       [&](v1::SamplingParams* s) { s->set_regex(literal); }},
      {"regex of the text's characters",
       [&](v1::SamplingParams* s) { s->set_regex("[" + klass + "]*"); }},
      {"grammar of the exact text",
       [&](v1::SamplingParams* s) {
         s->set_grammar("root ::= " + GbnfLiteral(text) + "\n");
       }},
  };
  for (const Case& c : cases) {
    GenerateRequest req = free;
    c.constrain(req.mutable_sampling());
    const Result r = GenerateOne(daemon_->Channel(), req);
    ASSERT_TRUE(r.status.ok()) << c.name << ": " << r.status.error_message();
    EXPECT_EQ(Ids(r.response), Ids(reference.response)) << c.name;
    EXPECT_EQ(r.response.text(), text) << c.name;
  }
  // Masking does change what it should: a constraint the text does not
  // satisfy gives another output.
  GenerateRequest digits = free;
  digits.mutable_sampling()->set_regex("[0-9]{4}");
  const Result d = GenerateOne(daemon_->Channel(), digits);
  ASSERT_TRUE(d.status.ok()) << d.status.error_message();
  EXPECT_TRUE(std::regex_match(d.response.text(), std::regex("[0-9]{4}")))
      << d.response.text();
}

TEST_P(StructuredOutputTest, MixedBatchEqualsSoloRuns) {
  std::vector<GenerateRequest> requests;
  auto add = [&](const std::string& prompt, float temperature, int max_tokens,
                 std::function<void(v1::SamplingParams*)> constrain) {
    GenerateRequest r = Request(temperature, 11 + requests.size(), max_tokens);
    r.set_prompt(prompt);
    if (constrain) constrain(r.mutable_sampling());
    requests.push_back(r);
  };
  add("Once upon a time", 0, 40, nullptr);
  add("Once upon a time", 0, 64,
      [](v1::SamplingParams* s) { s->set_regex(kRegex); });
  add("The little dog", 0, 32, nullptr);
  add("The little dog", 0, 400,
      [](v1::SamplingParams* s) { s->set_json_schema(kSchema); });
  add("Lily wanted", 0.8f, 48, nullptr);
  add("Lily wanted", 0, 200,
      [](v1::SamplingParams* s) { s->set_grammar(kGrammar); });
  add("Tom and Sue", 0, 48,
      [](v1::SamplingParams* s) { s->set_json_object(true); });
  add("Tom and Sue", 0.8f, 64,
      [](v1::SamplingParams* s) { s->set_regex(kRegex); });
  std::vector<Result> solo;
  int64_t solo_tokens = 0;
  for (const GenerateRequest& r : requests) {
    solo.push_back(GenerateOne(daemon_->Channel(), r));
    ASSERT_TRUE(solo.back().status.ok()) << solo.back().status.error_message();
    solo_tokens += solo.back().response.usage().completion_tokens();
  }
  const int64_t steps_before = Stats(daemon_->Channel()).steps();
  const std::vector<Result> together =
      GenerateConcurrently(daemon_->Channel(), requests);
  const int64_t steps = Stats(daemon_->Channel()).steps() - steps_before;
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(together[i].status.ok()) << together[i].status.error_message();
    EXPECT_EQ(Ids(together[i].response), Ids(solo[i].response))
        << "request " << i;
    EXPECT_EQ(together[i].response.text(), solo[i].response.text())
        << "request " << i;
    EXPECT_EQ(together[i].response.finish_reason(),
              solo[i].response.finish_reason())
        << "request " << i;
  }
  // They did share steps (run one by one they would take a step a token).
  EXPECT_LT(steps, solo_tokens * 3 / 4);
  // The constrained ones obeyed, the unconstrained ones were free.
  const std::regex regex(kRegex);
  EXPECT_TRUE(std::regex_match(together[1].response.text(), regex))
      << together[1].response.text();
  EXPECT_TRUE(std::regex_match(together[7].response.text(), regex))
      << together[7].response.text();
  EXPECT_TRUE(nlohmann::json::accept(together[3].response.text()))
      << together[3].response.text();
  EXPECT_FALSE(std::regex_match(together[0].response.text(), regex))
      << together[0].response.text();
}

INSTANTIATE_TEST_SUITE_P(Models, StructuredOutputTest,
                         ::testing::Values("stories260K", "synth"));

// Bad constraints: INVALID_ARGUMENT naming the field, the keyword and its
// path (or the line and column), decided before the request is queued.
// With --max-running=1 and a long request running, a request that reached
// the queue would wait there (queue_depth 1) and could only fail after it.
TEST(StructuredOutputErrorsTest, BadConstraintsAreRefusedBeforeQueueing) {
  DaemonProcess d(
      {"--model=" + testing::TestDataPath("models/stories260K.gguf"),
       "--max-running=1", "--kv-cache-mb=64", "--ctx-size=16384",
       "--metrics-listen=127.0.0.1:0"});
  ASSERT_TRUE(d.ok()) << d.Log();
  auto stub = v1::Inference::NewStub(d.Channel());
  GenerateRequest long_request;
  long_request.add_prompt_token_ids(1);
  // Seconds of stories260K: it runs until cancelled below, however slowly
  // the ~30 calls in between are scheduled.
  long_request.mutable_sampling()->set_max_tokens(16000);
  long_request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext long_ctx;
  auto long_reader = stub->GenerateStream(&long_ctx, long_request);
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(long_reader->Read(&msg));
  // Stats are published after each engine step: bounded wait until they
  // show the long request running.
  ASSERT_TRUE(StatsReach(
      d.Channel(), [](const v1::ModelStats& s) { return s.running() == 1; }));
  const v1::ModelStats before = Stats(d.Channel());

  struct BadCase {
    std::function<void(v1::SamplingParams*)> constrain;
    std::string message;  // the whole status message
  };
  const std::vector<BadCase> cases = {
      {[](v1::SamplingParams* s) {
         s->set_json_schema(
             R"({"type": "object", "properties": {"a": {"not": {"type": "null"}}}})");
       },
       "sampling.json_schema json_schema: unsupported keyword 'not' at "
       "#/properties/a"},
      {[](v1::SamplingParams* s) {
         s->set_json_schema(
             R"({"type": "array", "items": {"allOf": [{"type": "string"}]}})");
       },
       "sampling.json_schema json_schema: unsupported keyword 'allOf' at "
       "#/items"},
      {[](v1::SamplingParams* s) {
         s->set_json_schema(
             R"({"$defs": {"tags": {"type": "array", "minItems": 3, "maxItems": 2}}, "$ref": "#/$defs/tags"})");
       },
       "sampling.json_schema json_schema: 'maxItems' is below 'minItems' at "
       "#/$defs/tags"},
      {[](v1::SamplingParams* s) {
         s->set_json_schema(R"({"type": "strin"})");
       },
       "sampling.json_schema json_schema: unknown type \"strin\" at #/type"},
      {[](v1::SamplingParams* s) {
         s->set_json_schema(R"({"type": "string", "pattern": "(?=x)y"})");
       },
       "sampling.json_schema json_schema: 'pattern' \"(?=x)y\": regex column "
       "1: lookaround (?=, (?!, (?<=, (?<! is not supported at #"},
      {[](v1::SamplingParams* s) { s->set_regex("(ab"); },
       "sampling.regex regex column 1: missing ')'"},
      {[](v1::SamplingParams* s) { s->set_regex("(a)\\1"); },
       "sampling.regex regex column 4: backreference \\1 is not supported"},
      {[](v1::SamplingParams* s) { s->set_grammar("root ::= item\n"); },
       "sampling.grammar grammar line 1, column 10: undefined rule 'item'"},
      {[](v1::SamplingParams* s) {
         s->set_grammar("root ::= \"a\"\nfoo = \"b\"");
       },
       "sampling.grammar grammar line 2, column 5: expected '::=' after rule "
       "name 'foo'"},
  };
  for (const BadCase& c : cases) {
    GenerateRequest req;
    req.set_prompt(kPrompt);
    c.constrain(req.mutable_sampling());
    grpc::ClientContext ctx;
    GenerateResponse resp;
    const grpc::Status st = stub->Generate(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(st.error_message(), c.message);
    grpc::ClientContext sctx;
    auto reader = stub->GenerateStream(&sctx, req);
    v1::GenerateStreamResponse ignored;
    while (reader->Read(&ignored)) {
    }
    const grpc::Status ss = reader->Finish();
    EXPECT_EQ(ss.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(ss.error_message(), c.message);
    EXPECT_EQ(Stats(d.Channel()).queue_depth(), 0u) << c.message;
  }
  // The engine saw none of them: no prompt computed, none finished, the
  // long request still running alone.
  const v1::ModelStats after = Stats(d.Channel());
  EXPECT_EQ(after.prompt_tokens(), before.prompt_tokens());
  EXPECT_EQ(after.requests_finished(), 0u);
  EXPECT_EQ(after.queue_depth(), 0u);
  EXPECT_EQ(after.running(), 1u);
  const std::string metrics = testing::HttpGet(d.metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat(
                           "lumen_requests_total{api=\"grpc\",finish_reason="
                           "\"rejected\",model=\"stories260K\",status="
                           "\"INVALID_ARGUMENT\"} ",
                           2 * cases.size(), "\n")));
  // The check above can see a queued request: a valid constrained one waits.
  GenerateRequest good;
  good.set_prompt(kPrompt);
  good.mutable_sampling()->set_regex("[0-9]{3}");
  grpc::ClientContext good_ctx;
  auto good_reader = stub->GenerateStream(&good_ctx, good);
  EXPECT_TRUE(StatsReach(d.Channel(), [](const v1::ModelStats& s) {
    return s.queue_depth() == 1;
  }));
  long_ctx.TryCancel();
  while (long_reader->Read(&msg)) {
  }
  long_reader->Finish();
  // Once the long request is gone, the queued one runs and obeys.
  std::string good_text;
  while (good_reader->Read(&msg)) good_text += msg.text();
  EXPECT_TRUE(good_reader->Finish().ok());
  EXPECT_TRUE(std::regex_match(good_text, std::regex("[0-9]{3}"))) << good_text;
}

}  // namespace
}  // namespace lumen
