// `lumen generate` with an output constraint (--json-schema, --json-object,
// --regex, --grammar), and `lumen bench`, run as a user would run them
// against a real lumend serving stories260K.

#include <fstream>
#include <regex>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/daemon_process.h"
#include "tests/test_support.h"

namespace lumen {
namespace {

using testing::BinPath;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using testing::RunCommand;

constexpr char kSchema[] = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 6},
    "age": {"type": "integer", "minimum": 1, "maximum": 99},
    "pet": {"enum": ["cat", "dog"]}
  },
  "required": ["name", "age", "pet"],
  "additionalProperties": false
})";

// Writes `text` to a fresh file; returns its path.
std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = testing::MakeTempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

class LumenGenerateCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new DaemonProcess(
        {"--model=" + testing::TestDataPath("models/stories260K.gguf"),
         "--ctx-size=512", "--kv-cache-mb=16", "--threads=1"});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(daemon_->ok()) << daemon_->Log(); }

  // `lumen generate ARGS` against the daemon.
  static testing::CommandResult Generate(const std::string& args) {
    return RunCommand(absl::StrCat(BinPath("lumen"), " generate --addr ",
                                   daemon_->address(),
                                   " --prompt 'Once upon a time' ", args));
  }
  // The response's text from `lumen generate --json ARGS`.
  static std::string GeneratedText(const std::string& args) {
    auto r = Generate("--json " + args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j.is_object() ? j.value("text", std::string()) : "";
  }
  static DaemonProcess* daemon_;
};
DaemonProcess* LumenGenerateCliTest::daemon_ = nullptr;

TEST_F(LumenGenerateCliTest, JsonSchemaFileConstrainsTheOutput) {
  const std::string schema = WriteFile("person.json", kSchema);
  for (int seed = 0; seed < 4; ++seed) {
    const std::string text = GeneratedText(
        absl::StrCat("--json-schema ", schema,
                     " --temperature 1 --max-tokens 400 --seed ", seed));
    // The schema checked by hand: exactly these keys, these types, bounds.
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << "seed " << seed << ": " << text;
    EXPECT_EQ(doc.size(), 3u) << text;
    ASSERT_TRUE(doc.contains("name") && doc["name"].is_string()) << text;
    EXPECT_LE(doc["name"].get<std::string>().size(), 6u * 4) << text;
    ASSERT_TRUE(doc.contains("age") && doc["age"].is_number_integer()) << text;
    EXPECT_GE(doc["age"].get<int>(), 1) << text;
    EXPECT_LE(doc["age"].get<int>(), 99) << text;
    ASSERT_TRUE(doc.contains("pet")) << text;
    EXPECT_TRUE(doc["pet"] == "cat" || doc["pet"] == "dog") << text;
  }
}

TEST_F(LumenGenerateCliTest, RegexJsonObjectAndGrammarConstrainTheOutput) {
  const std::regex phone("[0-9]{3}-[0-9]{4}");
  // Without a constraint the story model does not write phone numbers.
  const std::string free_text =
      GeneratedText("--temperature 0 --max-tokens 24");
  EXPECT_FALSE(std::regex_match(free_text, phone)) << free_text;
  const std::string regex_text = GeneratedText(
      "--regex '[0-9]{3}-[0-9]{4}' --temperature 1 --seed 7 --max-tokens 24");
  EXPECT_TRUE(std::regex_match(regex_text, phone)) << regex_text;
  // The streaming form (no --json) prints the same text, then a newline.
  auto streamed = Generate(
      "--regex '[0-9]{3}-[0-9]{4}' --temperature 1 --seed 7 --max-tokens 24");
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, regex_text + "\n");
  EXPECT_THAT(streamed.err, HasSubstr("[stop]"));

  // A JSON object rarely closes within 64 tokens of this story model: the
  // output is cut, and only its end is missing.
  const std::string object_text =
      GeneratedText("--json-object --temperature 0 --max-tokens 64");
  ASSERT_FALSE(object_text.empty());
  EXPECT_EQ(object_text[0], '{') << object_text;
  EXPECT_NE(free_text[0], '{') << free_text;
  try {
    // It closed: a whole object.
    EXPECT_TRUE(nlohmann::json::parse(object_text).is_object());
  } catch (const nlohmann::json::parse_error& e) {
    EXPECT_EQ(e.byte, object_text.size() + 1)
        << e.what() << ": " << object_text;
  }

  const std::string grammar = WriteFile("answer.gbnf", R"(# yes/no answers
root ::= answer (", " answer){0,2} "."
answer ::= "yes" | "no" | "maybe"
)");
  const std::string answer = GeneratedText(
      absl::StrCat("--grammar ", grammar, " --temperature 1 --seed 3"));
  EXPECT_TRUE(std::regex_match(
      answer, std::regex("(yes|no|maybe)(, (yes|no|maybe)){0,2}\\.")))
      << answer;
}

TEST_F(LumenGenerateCliTest, ServerRefusalOfABadConstraintIsPrinted) {
  const std::string schema = WriteFile(
      "not.json",
      R"({"type": "object", "properties": {"a": {"not": {"type": "null"}}}})");
  auto r = Generate("--json-schema " + schema);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err,
              HasSubstr("lumen: INVALID_ARGUMENT: sampling.json_schema"));
  EXPECT_THAT(r.err, HasSubstr("unsupported keyword 'not' at #/properties/a"));
  EXPECT_EQ(r.out, "");
  auto bad_regex = Generate("--regex '(ab'");
  EXPECT_EQ(bad_regex.exit_code, 1);
  EXPECT_THAT(bad_regex.err, HasSubstr("INVALID_ARGUMENT: sampling.regex"));
}

// Flag errors end before any RPC: the address points at nothing.
// "N requests finished" from `lumen stats`.
int64_t RequestsFinished(const std::string& address) {
  auto r = RunCommand(BinPath("lumen") + " stats --addr " + address);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  if (!std::regex_search(r.out, m, std::regex(R"((\d+) requests finished)"))) {
    ADD_FAILURE() << r.out;
    return -1;
  }
  return std::stoll(m[1]);
}

TEST_F(LumenGenerateCliTest, BenchRunsItsWarmupUnmeasured) {
  const int64_t before = RequestsFinished(daemon_->address());
  auto r = RunCommand(absl::StrCat(
      BinPath("lumen"), " bench --addr ", daemon_->address(),
      " --concurrency 2 --requests 3 --prompt-tokens 16 --max-tokens 4"
      " --warmup 2 --json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["warmup"], 2);
  ASSERT_EQ(j["levels"].size(), 1u) << r.out;
  const auto& level = j["levels"][0];
  EXPECT_EQ(level["concurrency"], 2);
  EXPECT_EQ(level["requests"], 3);  // the warm-up is not counted
  EXPECT_TRUE(level["errors"].empty()) << r.out;
  EXPECT_GT(level["output_tokens_per_s"].get<double>(), 0);
  // ...but it ran: the daemon finished 2 + 3 requests.
  EXPECT_EQ(RequestsFinished(daemon_->address()) - before, 5);

  auto bad = RunCommand(absl::StrCat(BinPath("lumen"), " bench --addr ",
                                     daemon_->address(), " --warmup -1"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--warmup >= 0"));
}

TEST(LumenGenerateCliFlagsTest, HelpConflictsAndMissingFiles) {
  const std::string lumen = BinPath("lumen");
  auto help = RunCommand(lumen + " generate --help");
  ASSERT_EQ(help.exit_code, 0) << help.err;
  for (const char* flag :
       {"--json-schema", "--json-object", "--regex", "--grammar"}) {
    EXPECT_THAT(help.out,
                HasSubstr(std::string(flag) + "  constrain the output"))
        << flag;
  }
  EXPECT_THAT(help.out, HasSubstr("docs/structured-output.md"));
  auto usage = RunCommand(lumen + " --help");
  EXPECT_THAT(usage.out, HasSubstr("[--json-schema FILE | --json-object | "
                                   "--regex RE | --grammar FILE]"));

  const std::string schema = WriteFile("s.json", R"({"type": "integer"})");
  const std::string nowhere = " --addr 127.0.0.1:1 --prompt x";
  for (const std::string& pair :
       {"--json-schema " + schema + " --regex a",
        std::string("--json-object "
                    "--regex a"),
        "--grammar " + schema + " --json-schema " + schema}) {
    auto r = RunCommand(lumen + " generate" + nowhere + " " + pair);
    EXPECT_EQ(r.exit_code, 2) << pair;
    EXPECT_EQ(r.err,
              "lumen: give at most one of --json-schema, --json-object, "
              "--regex and --grammar\n")
        << pair;
  }
  const std::string missing = testing::MakeTempDir() + "/missing.json";
  auto no_schema =
      RunCommand(lumen + " generate" + nowhere + " --json-schema " + missing);
  EXPECT_EQ(no_schema.exit_code, 1);
  EXPECT_EQ(no_schema.err, "lumen: --json-schema: cannot read '" + missing +
                               "': No such file or directory\n");
  auto no_grammar =
      RunCommand(lumen + " generate" + nowhere + " --grammar " + missing);
  EXPECT_EQ(no_grammar.exit_code, 1);
  EXPECT_THAT(no_grammar.err, HasSubstr("lumen: --grammar: cannot read '"));
}

}  // namespace
}  // namespace lumen
