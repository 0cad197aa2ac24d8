// Tool calling over lumend's HTTP API on stories260K with real chat
// templates (Qwen2.5's Hermes format, Llama 3.1's JSON format):
// tool_choice "required" and a named function at temperature 1 over many
// seeds always give tool_calls whose arguments validate against the tool's
// schema (checked by python3-jsonschema, an implementation independent of
// Lumen's), streamed deltas reassemble to the same calls with no markup in
// the content, a follow-up with the tool result is answered, parameter
// schemas with local $ref/$defs are followed (a remote $ref is a 400), and
// bad tool input is a 400 naming the parameter.

#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/server/daemon_process.h"
#include "tests/server/python_jsonschema.h"
#include "tests/server/test_tools.h"
#include "tests/test_support.h"

namespace lumen {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;
using testing::ValidateWithPython;
using Json = nlohmann::json;

constexpr int kSeeds = 100;

struct Reply {
  int status = 0;
  std::string body;
  Json json;
};

Reply Post(int port, const Json& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  Reply out;
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.json = Json::parse(r->body, nullptr, false);
  return out;
}

// The events of an SSE body before [DONE] (empty when the framing is off).
std::vector<Json> Events(const std::string& raw) {
  std::vector<Json> events;
  size_t at = 0;
  bool done = false;
  while (at < raw.size()) {
    const size_t end = raw.find("\n\n", at);
    if (end == std::string::npos || raw.compare(at, 6, "data: ") != 0)
      return {};
    const std::string data = raw.substr(at + 6, end - at - 6);
    at = end + 2;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    Json j = Json::parse(data, nullptr, false);
    if (j.is_discarded()) return {};
    events.push_back(std::move(j));
  }
  return done ? events : std::vector<Json>{};
}

const Json& Tools() {
  static const Json* tools =
      new Json(testing::TestTools({"get_weather", "add"}));
  return *tools;
}

const Json& SchemaOf(const std::string& name) {
  return testing::ToolSchema(Tools(), name);
}

Json Body(uint64_t seed, const Json& tool_choice) {
  return {{"model", "stories260K"},
          {"messages",
           {{{"role", "user"}, {"content", "What is the weather in Paris?"}}}},
          {"tools", Tools()},
          {"tool_choice", tool_choice},
          {"parallel_tool_calls", false},
          {"temperature", 1},
          {"seed", seed},
          {"max_tokens", 300}};
}

// The model a test serves: stories260K prompted with a real template
// (--chat-template FILE), or a random-weight synth model whose GGUF carries
// that template in tokenizer.chat_template (lumend's default, auto, reads
// it from the file, as it does for a downloaded model).
struct ServedModel {
  std::string name;           // the test's suffix
  std::string template_file;  // under testdata/templates
  // In the raw output of a required call: the call format was detected from
  // the template lumend used (Hermes tags, Llama 3.1's "parameters").
  std::string markup;
  bool synth = false;
};

// `lumen model synth` of a small llama with stories260K's vocabulary and
// `template_file` embedded; one file per template per test process.
std::string SynthWithTemplate(const std::string& template_file) {
  static std::map<std::string, std::string>* made =
      new std::map<std::string, std::string>();
  auto [it, fresh] = made->try_emplace(template_file);
  if (!fresh) return it->second;
  const std::string path =
      testing::MakeTempDir() + "/synth-" + template_file + ".gguf";
  const testing::CommandResult r = testing::RunCommand(absl::StrCat(
      testing::BinPath("lumen"),
      " model synth --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 "
      "--ffn 128 --ctx 4096 --seed 5 --vocab-from ",
      testing::TestDataPath("models/stories260K.gguf"),
      " --chat-template-file ",
      testing::TestDataPath("templates/" + template_file), " ", path));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  it->second = r.exit_code == 0 ? path : "";
  return it->second;
}

class HttpToolsTest : public ::testing::TestWithParam<ServedModel> {
 protected:
  void SetUp() override {
    std::vector<std::string> args = {"--http-listen=127.0.0.1:0",
                                     "--kv-cache-mb=64", "--ctx-size=4096"};
    const ServedModel& m = GetParam();
    if (m.synth) {
      const std::string path = SynthWithTemplate(m.template_file);
      ASSERT_FALSE(path.empty());
      args.push_back("--model=stories260K=" + path);
    } else {
      args.push_back("--model=stories260K=" +
                     testing::TestDataPath("models/stories260K.gguf"));
      args.push_back("--chat-template=" +
                     testing::TestDataPath("templates/" + m.template_file));
    }
    daemon_ = std::make_unique<DaemonProcess>(std::move(args));
    ASSERT_TRUE(daemon_->ok()) << daemon_->Log();
    ASSERT_GT(daemon_->http_port(), 0) << daemon_->Log();
  }
  int port() const { return daemon_->http_port(); }
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_P(HttpToolsTest, RequiredCallsValidateAndStreamTheSame) {
  // Every run below reads the prompt's KV from the prefix cache: a cold
  // prefill batches differently, and at temperature 1 its last-bit
  // differences in the logits can change a sampled token.
  ASSERT_EQ(Post(port(), Body(0, "required")).status, 200);
  // The raw output (the tokens' bytes) is in the template family's format:
  // lumend prompted with, and parsed for, the template it was given.
  Json raw_body = Body(0, "required");
  raw_body["logprobs"] = true;
  Reply raw = Post(port(), raw_body);
  ASSERT_EQ(raw.status, 200) << raw.body;
  std::string output;
  for (const Json& t : raw.json["choices"][0]["logprobs"]["content"]) {
    for (const Json& b : t["bytes"]) output += static_cast<char>(b.get<int>());
  }
  EXPECT_THAT(output, HasSubstr(GetParam().markup));
  Json validations = Json::array();
  int calls_in_pieces = 0;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    // Every other seed names the function.
    const Json choice = seed % 2 == 0 ? Json("required")
                                      : Json{{"type", "function"},
                                             {"function", {{"name", "add"}}}};
    Reply r = Post(port(), Body(seed, choice));
    ASSERT_EQ(r.status, 200) << r.body;
    const Json& choice0 = r.json["choices"][0];
    ASSERT_EQ(choice0["finish_reason"], "tool_calls") << r.body;
    const Json& message = choice0["message"];
    EXPECT_TRUE(message["content"].is_null()) << r.body;
    ASSERT_EQ(message["tool_calls"].size(), 1u) << r.body;
    const Json& call = message["tool_calls"][0];
    EXPECT_TRUE(absl::StartsWith(call["id"].get<std::string>(), "call_"));
    EXPECT_EQ(call["type"], "function");
    const std::string name = call["function"]["name"];
    if (seed % 2 == 1) {
      EXPECT_EQ(name, "add");
    }
    ASSERT_FALSE(SchemaOf(name).is_null()) << name;
    const Json arguments = Json::parse(
        call["function"]["arguments"].get<std::string>(), nullptr, false);
    ASSERT_TRUE(arguments.is_object()) << r.body;
    validations.push_back(
        {{"schema", SchemaOf(name)}, {"instance", arguments}});

    // The same request streamed: no content, one call in OpenAI's delta
    // format, equal to the whole response's.
    Json body = Body(seed, choice);
    body["stream"] = true;
    Reply s = Post(port(), body);
    ASSERT_EQ(s.status, 200) << s.body;
    const std::vector<Json> events = Events(s.body);
    ASSERT_FALSE(events.empty()) << s.body;
    std::string content;
    Json calls = Json::array();
    std::string finish;
    int later_pieces = 0;
    for (const Json& e : events) {
      const Json& c = e["choices"][0];
      const Json& delta = c["delta"];
      if (delta.contains("content")) content += delta["content"];
      if (delta.contains("tool_calls")) {
        for (const Json& d : delta["tool_calls"]) {
          const size_t index = d["index"].get<size_t>();
          if (index == calls.size()) {
            // A call's first delta: index, id, type, function.name.
            ASSERT_TRUE(d.contains("id")) << d;
            EXPECT_EQ(d["type"], "function");
            calls.push_back({{"name", d["function"]["name"]},
                             {"arguments", d["function"].value(
                                               "arguments", std::string())}});
          } else {
            // A later piece: only more of the arguments.
            ASSERT_LT(index, calls.size());
            EXPECT_FALSE(d.contains("id")) << d;
            EXPECT_FALSE(d["function"].contains("name")) << d;
            calls[index]["arguments"] =
                calls[index]["arguments"].get<std::string>() +
                d["function"]["arguments"].get<std::string>();
            ++later_pieces;
          }
        }
      }
      if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    }
    EXPECT_EQ(content, "");
    EXPECT_EQ(finish, "tool_calls");
    ASSERT_EQ(calls.size(), 1u) << s.body;
    EXPECT_EQ(calls[0]["name"], name);
    EXPECT_EQ(calls[0]["arguments"], call["function"]["arguments"]);
    calls_in_pieces += later_pieces > 0;
  }
  EXPECT_EQ(ValidateWithPython(validations), "");
  // The name left before the arguments were complete (one SSE event per
  // engine step; a step may bring several tokens, so not every call need
  // arrive in several pieces).
  EXPECT_GT(calls_in_pieces, 0);
}

TEST_P(HttpToolsTest, ToolResultFollowUpIsAnswered) {
  Reply first = Post(port(), Body(7, "required"));
  ASSERT_EQ(first.status, 200) << first.body;
  const Json& message = first.json["choices"][0]["message"];
  ASSERT_EQ(message["tool_calls"].size(), 1u) << first.body;
  const std::string id = message["tool_calls"][0]["id"];

  Json body = Body(7, "auto");
  body["max_tokens"] = 8;
  body["messages"].push_back(message);
  body["messages"].push_back(
      {{"role", "tool"}, {"tool_call_id", id}, {"content", "18 degrees"}});
  Reply second = Post(port(), body);
  ASSERT_EQ(second.status, 200) << second.body;
  // The prompt now holds the call and its result.
  EXPECT_GT(second.json["usage"]["prompt_tokens"].get<int>(),
            first.json["usage"]["prompt_tokens"].get<int>() + 10);

  // A result for a call nobody made, and arguments that are not JSON: 400
  // naming the message.
  body["messages"][2]["tool_call_id"] = "call_nobody";
  Reply orphan = Post(port(), body);
  ASSERT_EQ(orphan.status, 400) << orphan.body;
  EXPECT_EQ(orphan.json["error"]["param"], "messages[2].tool_call_id");
  body["messages"][2]["tool_call_id"] = id;
  body["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{\"a\": ";
  Reply bad = Post(port(), body);
  ASSERT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.json["error"]["param"],
            "messages[1].tool_calls[0].function.arguments");
  EXPECT_THAT(bad.json["error"]["message"].get<std::string>(),
              HasSubstr("not valid JSON"));
}

TEST_P(HttpToolsTest, BadToolInputIsA400NamingTheParam) {
  struct Case {
    std::string field;  // replaced in Body()
    Json value;
    std::string param;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"tools", Json::parse(R"([{"type": "code_interpreter"}])"),
       "tools[0].type", "only function tools"},
      {"tools",
       Json::parse(R"([{"type": "function", "function": {"name": "a b"}}])"),
       "tools[0].function.name", "letters, digits"},
      {"tools", Json::parse(R"([{"type": "function", "function": {"name": "f",
          "parameters": {"type": "object", "properties": {"x": {"type": "strnig"}}}}}])"),
       "tools[0].function.parameters.properties.x.type",
       "must be object, array, string"},
      {"tool_choice",
       Json::parse(R"({"type": "function", "function": {"name": "nope"}})"),
       "tool_choice.function.name", "'nope' is not one of the tools"},
      {"tool_choice", "always", "tool_choice", "'always' is not auto"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.param);
    Json body = Body(1, "auto");
    body[c.field] = c.value;
    Reply r = Post(port(), body);
    ASSERT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json["error"]["type"], "invalid_request_error");
    EXPECT_EQ(r.json["error"]["param"], c.param) << r.body;
    EXPECT_THAT(r.json["error"]["message"].get<std::string>(),
                HasSubstr(c.message));
  }
}

// A tool whose parameters use local references: a $defs entry used twice
// that refers to another one, and a definitions entry. (Recursive
// references are tested on the grammar in http_tools_unit_test.cc:
// stories260K at temperature 1 rarely ends a recursion before max_tokens.)
const Json& RefTool() {
  static const Json* tool = new Json(Json::parse(R"({"type": "function",
    "function": {"name": "plan_trip", "parameters": {
      "type": "object",
      "properties": {"from": {"$ref": "#/$defs/place"},
                     "to": {"$ref": "#/$defs/place"},
                     "mode": {"$ref": "#/definitions/mode"}},
      "required": ["from", "to", "mode"], "additionalProperties": false,
      "$defs": {"place": {"type": "object",
                          "properties": {"city": {"$ref": "#/$defs/name"}},
                          "required": ["city"], "additionalProperties": false},
                "name": {"type": "string", "minLength": 1, "maxLength": 10}},
      "definitions": {"mode": {"enum": ["train", "car"]}}}}})"));
  return *tool;
}

TEST_P(HttpToolsTest, RequiredCallsFollowRefSchemas) {
  Json body = Body(0, "required");
  body["tools"] = Json::array({RefTool(), Tools()[1]});
  const Reply warm = Post(port(), body);
  ASSERT_EQ(warm.status, 200) << warm.body;
  Json validations = Json::array();
  int trips = 0;
  for (int seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    body["seed"] = seed;
    // Every other seed names the trip tool.
    body["tool_choice"] =
        seed % 2 == 0
            ? Json("required")
            : Json{{"type", "function"}, {"function", {{"name", "plan_trip"}}}};
    Reply r = Post(port(), body);
    ASSERT_EQ(r.status, 200) << r.body;
    const Json& choice0 = r.json["choices"][0];
    ASSERT_EQ(choice0["finish_reason"], "tool_calls") << r.body;
    ASSERT_EQ(choice0["message"]["tool_calls"].size(), 1u) << r.body;
    const Json& function = choice0["message"]["tool_calls"][0]["function"];
    const Json arguments =
        Json::parse(function["arguments"].get<std::string>(), nullptr, false);
    ASSERT_TRUE(arguments.is_object()) << r.body;
    const Json& schema = function["name"] == "plan_trip"
                             ? RefTool()["function"]["parameters"]
                             : SchemaOf(function["name"]);
    ASSERT_FALSE(schema.is_null()) << r.body;
    trips += function["name"] == "plan_trip";
    validations.push_back({{"schema", schema}, {"instance", arguments}});
  }
  EXPECT_GE(trips, 15);
  // python3-jsonschema resolves the references itself.
  EXPECT_EQ(ValidateWithPython(validations), "");

  // A remote reference is never fetched: 400 naming tool_choice.
  Json remote = RefTool();
  remote["function"]["parameters"]["properties"]["to"]["$ref"] =
      "https://example.com/place.json";
  body["tools"] = Json::array({remote});
  Reply refused = Post(port(), body);
  ASSERT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.json["error"]["param"], "tool_choice");
  EXPECT_THAT(refused.json["error"]["message"].get<std::string>(),
              HasSubstr("is not local"));
}

// The README's example is written for Qwen2.5's template.
class HttpToolsReadmeTest : public HttpToolsTest {};

TEST_P(HttpToolsReadmeTest, ToolCallingCurlExampleWorks) {
  const std::string readme =
      testing::ReadFile(std::string(LUMEN_SOURCE_DIR) + "/README.md");
  // The README's curl command with tools.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      readme, m,
      std::regex(
          "(curl [^`]*?/v1/chat/completions[^`]*?\"tools\"[^`]*?)\n```")))
      << "README.md has no curl example with tools";
  const std::string command = absl::StrReplaceAll(
      m[1].str(),
      {{"127.0.0.1:8080", absl::StrCat("127.0.0.1:", port())}, {"\\\n", " "}});
  testing::CommandResult out = testing::RunCommand(command);
  ASSERT_EQ(out.exit_code, 0) << command << "\n" << out.err;
  Json j = Json::parse(out.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << out.out;
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls") << out.out;
  const Json& calls = j["choices"][0]["message"]["tool_calls"];
  ASSERT_EQ(calls.size(), 1u) << out.out;
  EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
  const Json args = Json::parse(
      calls[0]["function"]["arguments"].get<std::string>(), nullptr, false);
  ASSERT_TRUE(args.is_object()) << out.out;
  EXPECT_TRUE(args["city"].is_string()) << out.out;
}

INSTANTIATE_TEST_SUITE_P(
    Templates, HttpToolsTest,
    ::testing::Values(
        ServedModel{"Hermes", "Qwen-Qwen2.5-7B-Instruct.jinja", "<tool_call>"},
        ServedModel{"Llama3", "meta-llama-Llama-3.1-8B-Instruct.jinja",
                    "\"parameters\""},
        ServedModel{"Qwen3CoderXml", "Qwen3-Coder.jinja", "<function="},
        ServedModel{"SynthQwen25", "Qwen-Qwen2.5-7B-Instruct.jinja",
                    "<tool_call>", true},
        ServedModel{"SynthLlama31", "meta-llama-Llama-3.1-8B-Instruct.jinja",
                    "\"parameters\"", true}),
    [](const auto& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(Qwen25, HttpToolsReadmeTest,
                         ::testing::Values(ServedModel{
                             "Hermes", "Qwen-Qwen2.5-7B-Instruct.jinja",
                             "<tool_call>"}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace lumen
