// Tool calling over lumend's gRPC API on stories260K with real chat
// templates (Qwen2.5's Hermes format, Llama 3.1's JSON format): with
// tool_choice "required" or a named function at temperature 1, Generate
// returns parsed ToolCalls whose arguments validate against the tool's
// schema (python3-jsonschema, independent of Lumen), finish_reason
// "tool_calls" and no markup in the text; GenerateStream's messages join to
// the same text and calls; in "auto" the streamed text (markup held back)
// still equals the unary text; a follow-up with the tool result is served,
// and bad tool input is INVALID_ARGUMENT naming the field.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lumen/v1/inference.grpc.pb.h"
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

constexpr int kSeeds = 40;

const Json& Tools() {
  static const Json* tools =
      new Json(testing::TestTools({"get_weather", "book"}));
  return *tools;
}

const Json& SchemaOf(const std::string& name) {
  return testing::ToolSchema(Tools(), name);
}

v1::GenerateRequest Request(uint64_t seed, const std::string& tool_choice,
                            bool parallel) {
  v1::GenerateRequest r;
  r.set_model("stories260K");
  v1::ChatMessage* m = r.add_messages();
  m->set_role("user");
  m->set_content("What is the weather in Paris?");
  r.set_tools_json(Tools().dump());
  r.set_tool_choice_json(tool_choice);
  r.set_parallel_tool_calls(parallel);
  r.mutable_sampling()->set_temperature(1);
  r.mutable_sampling()->set_seed(seed);
  r.mutable_sampling()->set_max_tokens(300);
  return r;
}

// A response's calls as comparable JSON (ids are random per response).
Json CallsOf(const google::protobuf::RepeatedPtrField<v1::ToolCall>& calls) {
  Json out = Json::array();
  for (const v1::ToolCall& c : calls) {
    out.push_back({{"index", c.index()},
                   {"name", c.name()},
                   {"arguments", c.arguments_json()}});
  }
  return out;
}

struct Streamed {
  grpc::Status status;
  std::string text;
  Json calls = Json::array();  // the pieces joined
  std::string finish_reason;
  int messages = 0;
  // Calls whose arguments came in more than one message.
  int calls_in_pieces = 0;
};

Streamed Stream(v1::Inference::Stub& stub, const v1::GenerateRequest& r) {
  grpc::ClientContext ctx;
  auto reader = stub.GenerateStream(&ctx, r);
  Streamed out;
  v1::GenerateStreamResponse msg;
  std::vector<int> pieces;
  while (reader->Read(&msg)) {
    ++out.messages;
    out.text += msg.text();
    for (const v1::ToolCall& c : msg.tool_calls()) {
      const size_t index = c.index();
      if (index == out.calls.size()) {
        // A call's first piece: its id and name.
        EXPECT_TRUE(absl::StartsWith(c.id(), "call_")) << c.id();
        EXPECT_FALSE(c.name().empty());
        out.calls.push_back({{"index", c.index()},
                             {"name", c.name()},
                             {"arguments", c.arguments_json()}});
        pieces.push_back(1);
      } else {
        // A later piece: only more arguments.
        EXPECT_LT(index, out.calls.size());
        if (index >= out.calls.size()) continue;
        EXPECT_EQ(c.id(), "");
        EXPECT_EQ(c.name(), "");
        out.calls[index]["arguments"] =
            out.calls[index]["arguments"].get<std::string>() +
            c.arguments_json();
        ++pieces[index];
      }
    }
    if (!msg.finish_reason().empty()) out.finish_reason = msg.finish_reason();
  }
  for (int n : pieces) out.calls_in_pieces += n > 1;
  out.status = reader->Finish();
  return out;
}

class GrpcToolsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(std::vector<std::string>{
        "--model=stories260K=" +
            testing::TestDataPath("models/stories260K.gguf"),
        "--kv-cache-mb=64", "--ctx-size=4096",
        "--chat-template=" + testing::TestDataPath("templates/" + GetParam())});
    ASSERT_TRUE(daemon_->ok()) << daemon_->Log();
    stub_ = v1::Inference::NewStub(daemon_->Channel());
  }

  grpc::Status Generate(const v1::GenerateRequest& r,
                        v1::GenerateResponse* out) {
    grpc::ClientContext ctx;
    return stub_->Generate(&ctx, r, out);
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TEST_P(GrpcToolsTest, RequiredCallsValidateAndStreamTheSame) {
  // Later runs read the prompt's KV from the prefix cache: a cold prefill
  // batches differently, and at temperature 1 its last-bit differences in
  // the logits can change a sampled token.
  v1::GenerateResponse warm;
  const grpc::Status warmed =
      Generate(Request(0, "\"required\"", false), &warm);
  ASSERT_TRUE(warmed.ok()) << warmed.error_message();
  Json validations = Json::array();
  int several = 0, calls_in_pieces = 0;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    // Every other seed names the function; every third allows parallel
    // calls (Llama 3.1's format writes one call per turn whatever it says).
    const std::string choice =
        seed % 2 == 0 ? "\"required\""
                      : R"({"type": "function", "function": {"name": "book"}})";
    const bool parallel = seed % 3 == 0;
    const v1::GenerateRequest request = Request(seed, choice, parallel);
    v1::GenerateResponse r;
    const grpc::Status status = Generate(request, &r);
    ASSERT_TRUE(status.ok()) << status.error_message();
    // No markup in the text: it is empty, unless parallel calls went on
    // until max_tokens cut the output. Cut inside a call's arguments, the
    // call stays a call with the arguments written so far, and the finish
    // reason is "length"; cut before a call was certain, that markup stays
    // text.
    const bool cut =
        r.usage().completion_tokens() >= request.sampling().max_tokens();
    if (!cut) {
      EXPECT_EQ(r.text(), "") << r.DebugString();
      EXPECT_EQ(r.finish_reason(), "tool_calls") << r.DebugString();
    } else {
      EXPECT_TRUE(parallel) << r.DebugString();
      EXPECT_TRUE(r.finish_reason() == "tool_calls" ||
                  r.finish_reason() == "length")
          << r.DebugString();
    }
    ASSERT_GE(r.tool_calls_size(), 1) << r.DebugString();
    if (!parallel) {
      ASSERT_EQ(r.tool_calls_size(), 1) << r.DebugString();
    }
    several += r.tool_calls_size() > 1;
    for (int i = 0; i < r.tool_calls_size(); ++i) {
      const v1::ToolCall& call = r.tool_calls(i);
      EXPECT_EQ(call.index(), static_cast<uint32_t>(i));
      EXPECT_TRUE(absl::StartsWith(call.id(), "call_")) << call.id();
      EXPECT_EQ(call.id().size(), 29u) << call.id();
      if (seed % 2 == 1) {
        EXPECT_EQ(call.name(), "book");
      }
      ASSERT_FALSE(SchemaOf(call.name()).is_null()) << call.name();
      if (r.finish_reason() == "length" && i + 1 == r.tool_calls_size()) {
        continue;  // the call max_tokens cut: its arguments are partial
      }
      const Json arguments = Json::parse(call.arguments_json(), nullptr, false);
      ASSERT_TRUE(arguments.is_object()) << call.arguments_json();
      validations.push_back(
          {{"schema", SchemaOf(call.name())}, {"instance", arguments}});
    }

    // The same request streamed: the same (empty) text and the same calls.
    const Streamed s = Stream(*stub_, request);
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.text, r.text());
    EXPECT_EQ(s.calls, CallsOf(r.tool_calls()));
    EXPECT_EQ(s.finish_reason, r.finish_reason());
    calls_in_pieces += s.calls_in_pieces;
  }
  EXPECT_EQ(ValidateWithPython(validations), "");
  // Arguments stream: a call's name leaves before its arguments are done.
  // (Messages may merge pieces when the client reads slower than the model
  // writes, so not every call need arrive in several.)
  EXPECT_GT(calls_in_pieces, 0);
  std::printf("streamed calls whose arguments came in several messages: %d\n",
              calls_in_pieces);
  // The report of what parallel calls did (not a requirement: the model
  // decides how many calls it writes).
  std::printf("responses with several calls: %d\n", several);
}

TEST_P(GrpcToolsTest, AutoStreamsTheSameTextAsUnary) {
  // "auto" lets stories260K write prose: text that may begin call markup
  // ('{', '<') is held back and then released, never lost or reordered.
  v1::GenerateResponse warm;
  ASSERT_TRUE(Generate(Request(0, "\"auto\"", true), &warm).ok());
  for (int seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    v1::GenerateRequest request = Request(seed, "\"auto\"", true);
    request.mutable_sampling()->set_max_tokens(64);
    v1::GenerateResponse r;
    const grpc::Status status = Generate(request, &r);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const Streamed s = Stream(*stub_, request);
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.text, r.text());
    EXPECT_EQ(s.calls, CallsOf(r.tool_calls()));
    EXPECT_EQ(s.finish_reason, r.finish_reason());
    if (r.tool_calls_size() == 0) {
      EXPECT_NE(r.finish_reason(), "tool_calls");
      EXPECT_FALSE(r.text().empty());
    }
  }
}

TEST_P(GrpcToolsTest, ToolResultFollowUpIsServed) {
  v1::GenerateRequest request = Request(7, "\"required\"", false);
  v1::GenerateResponse first;
  ASSERT_TRUE(Generate(request, &first).ok());
  ASSERT_EQ(first.tool_calls_size(), 1) << first.DebugString();
  const v1::ToolCall& call = first.tool_calls(0);

  // The assistant turn that made the call, then the result, in the
  // request's OpenAI shapes.
  v1::ChatMessage* assistant = request.add_messages();
  assistant->set_role("assistant");
  assistant->set_tool_calls_json(
      Json::array(
          {{{"id", call.id()},
            {"type", "function"},
            {"function",
             {{"name", call.name()}, {"arguments", call.arguments_json()}}}}})
          .dump());
  v1::ChatMessage* result = request.add_messages();
  result->set_role("tool");
  result->set_tool_call_id(call.id());
  result->set_content("18 degrees");
  request.set_tool_choice_json("\"auto\"");
  request.mutable_sampling()->set_max_tokens(8);
  v1::GenerateResponse second;
  const grpc::Status status = Generate(request, &second);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The prompt now holds the call and its result.
  EXPECT_GT(second.usage().prompt_tokens(), first.usage().prompt_tokens() + 10);

  // A result for a call nobody made.
  request.mutable_messages(2)->set_tool_call_id("call_nobody");
  v1::GenerateResponse orphan;
  const grpc::Status refused = Generate(request, &orphan);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("messages[2].tool_call_id"));
}

TEST_P(GrpcToolsTest, BadToolInputIsInvalidArgumentNamingTheField) {
  struct Case {
    std::string tools_json;
    std::string tool_choice_json;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"[{\"type\": \"code_interpreter\"}]", "", "tools[0].type"},
      {"[{\"type\": \"function\"", "", "tools is not valid JSON"},
      {Tools().dump(), R"({"type": "function", "function": {"name": "nope"}})",
       "'nope' is not one of the tools"},
      {Tools().dump(), "\"always\"", "tool_choice"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    v1::GenerateRequest request = Request(1, c.tool_choice_json, true);
    request.set_tools_json(c.tools_json);
    v1::GenerateResponse r;
    const grpc::Status status = Generate(request, &r);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
    const Streamed s = Stream(*stub_, request);
    EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.messages, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Templates, GrpcToolsTest,
    ::testing::Values("Qwen-Qwen2.5-7B-Instruct.jinja",
                      "meta-llama-Llama-3.1-8B-Instruct.jinja"),
    [](const auto& info) {
      return std::string(absl::StartsWith(info.param, "Qwen") ? "Hermes"
                                                              : "Llama3");
    });

}  // namespace
}  // namespace lumen
