// The HTTP front end's pure pieces: OpenAI JSON -> GenerateRequest (every
// wrong type or unsupported feature names its field as the client wrote
// it), the shared request builder's errors named back in OpenAI's terms,
// the status -> HTTP error mapping, response and chunk shapes, and SSE
// framing.

#include <string>
#include <vector>

#include "absl/strings/cord.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "server/http/json_fields.h"
#include "server/http/openai_error.h"
#include "server/http/openai_request.h"
#include "server/http/openai_response.h"
#include "server/http/sse_writer.h"
#include "server/request_builder.h"
#include "tests/test_support.h"

namespace lumen::server::http {
namespace {

using ::testing::HasSubstr;

Json Parse(const std::string& text) {
  absl::StatusOr<Json> j = ParseJson(text);
  EXPECT_TRUE(j.ok()) << j.status();
  return j.ok() ? *j : Json();
}

// The OpenAI param an error names: the translation's own field, or the
// request builder's proto path mapped back.
std::string ParamOfError(const OpenAiRequest* r, const absl::Status& s) {
  return r ? r->ParamOf(FieldOf(s)) : FieldOf(s);
}

TEST(HttpJsonTest, MalformedBodiesAreInvalidArgumentWithThePosition) {
  EXPECT_THAT(ParseJson("{\"a\": 1,"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 1, column 9")));
  EXPECT_THAT(ParseJson(""), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("not valid JSON")));
  EXPECT_THAT(ParseJson("{\"a\": \"\xff\"}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not valid JSON")));
}

TEST(HttpJsonTest, NestingIsBounded) {
  auto nested = [](int depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  EXPECT_TRUE(ParseJson(nested(64)).ok());
  EXPECT_THAT(ParseJson(nested(65)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("deeper than 64 levels")));
  EXPECT_THAT(ParseJson(nested(100000)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("deeper than 64 levels")));
}

struct BadChat {
  std::string body;
  std::string param;    // expected `param`
  std::string message;  // part of the message
};

TEST(HttpRequestTest, ChatFieldErrorsNameTheField) {
  const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
  const std::vector<BadChat> cases = {
      {R"({"messages": "hi"})", "messages", "must be an array (got string)"},
      {R"({"messages": []})", "messages", "at least one message"},
      {R"({"messages": [3]})", "messages[0]", "must be an object"},
      {R"({"messages": [{"content": "x"}]})", "messages[0].role",
       "is required"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content",
       "is required"},
      {R"({"messages": [{"role": "user", "content": 7}]})",
       "messages[0].content", "a string or an array of content parts"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url",
          "image_url": {"url": "x"}}]}]})",
       "messages[0].content[0].type", "'image_url' is not supported"},
      {R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})",
       "messages[0].content[0].text", "is required"},
      {"{" + msgs + R"(, "temperature": "hot"})", "temperature",
       "must be a number (got string)"},
      {"{" + msgs + R"(, "max_tokens": 1.5})", "max_tokens",
       "must be an integer (got number)"},
      {"{" + msgs + R"(, "max_tokens": -1})", "max_tokens", "must be in [0"},
      {"{" + msgs + R"(, "stop": 3})", "stop", "a string or an array"},
      {"{" + msgs + R"(, "stop": ["a", 3]})", "stop[1]", "must be a string"},
      {"{" + msgs + R"(, "n": 2})", "n", "must be 1"},
      {"{" + msgs + R"(, "seed": -3})", "seed", "must be >= 0"},
      {"{" + msgs + R"(, "seed": "x"})", "seed", "must be an integer"},
      {"{" + msgs + R"(, "stream": "yes"})", "stream", "true or false"},
      {"{" + msgs + R"(, "stream_options": {"include_usage": true}})",
       "stream_options", "only allowed when stream is true"},
      {"{" + msgs + R"(, "logit_bias": {"5": 10}})", "logit_bias",
       "not supported"},
      {"{" + msgs + R"(, "tools": {"type": "function"}})", "tools",
       "must be an array"},
      {"{" + msgs + R"(, "functions": [{"name": "f"}]})", "functions",
       "use tools and tool_choice"},
      {"{" + msgs + R"(, "parallel_tool_calls": 1})", "parallel_tool_calls",
       "true or false"},
      {R"({"messages": [{"role": "assistant", "tool_calls": {}}]})",
       "messages[0].tool_calls", "must be an array"},
      {"{" + msgs + R"(, "top_logprobs": 2})", "top_logprobs",
       "requires logprobs: true"},
      {"{" + msgs + R"(, "logprobs": 1})", "logprobs", "true or false"},
      {"{" + msgs + R"(, "response_format": {"type": "xml"}})",
       "response_format.type", "must be text, json_object or json_schema"},
      {"{" + msgs + R"(, "response_format": "json"})", "response_format",
       "must be an object"},
      {"{" + msgs + R"(, "response_format": {"type": "json_schema"}})",
       "response_format.json_schema", "is required"},
      {"{" + msgs +
           R"(, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}})",
       "response_format.json_schema.schema", "is required"},
      {"{" + msgs + R"(, "rag": {"collections": []}})", "rag.collections",
       "at least one collection"},
      {"{" + msgs + R"(, "rag": {"collections": ["a", 1]}})",
       "rag.collections[1]", "must be a string"},
      {"{" + msgs + R"(, "rag": {"collections": ["a"], "filter": {"k": 1}}})",
       "rag.filter.k", "must be a string"},
      {"{" + msgs + R"(, "rag": {"collections": ["a"], "mode": "fuzzy"}})",
       "rag.mode", "hybrid, vector or keyword"},
      {"{" + msgs + R"(, "top_k": -1})", "top_k", "must be in [0"},
      {"{" + msgs + R"(, "ignore_eos": 1})", "ignore_eos", "true or false"},
      {"{" + msgs + R"(, "adapter": 5})", "adapter", "must be a string"},
      {"{" + msgs + R"(, "user": 5})", "user", "must be a string"},
  };
  for (const BadChat& c : cases) {
    SCOPED_TRACE(c.body);
    absl::StatusOr<OpenAiRequest> r = FromChatCompletion(Parse(c.body));
    ASSERT_THAT(
        r, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
    EXPECT_EQ(FieldOf(r.status()), c.param);
    HttpError e = ToHttpError(r.status(), FieldOf(r.status()));
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.body["error"]["param"], c.param);
    EXPECT_EQ(e.body["error"]["type"], "invalid_request_error");
  }
}

TEST(HttpRequestTest, CompletionPromptForms) {
  absl::StatusOr<OpenAiRequest> r =
      FromCompletion(Parse(R"({"prompt": "Once upon"})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request.prompt(), "Once upon");

  r = FromCompletion(Parse(R"({"prompt": [1, 400, 7]})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::vector<int32_t>(r->request.prompt_token_ids().begin(),
                                 r->request.prompt_token_ids().end()),
            (std::vector<int32_t>{1, 400, 7}));
  EXPECT_EQ(r->ParamOf("prompt_token_ids[2]"), "prompt[2]");

  r = FromCompletion(Parse(R"({"prompt": [[1, 5]]})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request.prompt_token_ids_size(), 2);
  EXPECT_EQ(r->ParamOf("prompt_token_ids[1]"), "prompt[0][1]");

  r = FromCompletion(Parse(R"({"prompt": ["one prompt"]})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request.prompt(), "one prompt");

  const std::vector<BadChat> bad = {
      {R"({})", "prompt", "is required"},
      {R"({"prompt": ""})", "prompt", "must not be empty"},
      {R"({"prompt": []})", "prompt", "must not be empty"},
      {R"({"prompt": ["a", "b"]})", "prompt", "one prompt per request"},
      {R"({"prompt": [[1], [2]]})", "prompt", "one prompt per request"},
      {R"({"prompt": [1, 2.5]})", "prompt[1]", "must be a token id"},
      {R"({"prompt": [1, -2]})", "prompt[1]", "is not a token id"},
      {R"({"prompt": [[1, "x"]]})", "prompt[0][1]", "must be a token id"},
      {R"({"prompt": {"text": "x"}})", "prompt", "must be a string"},
      {R"({"prompt": "x", "echo": true})", "echo", "not supported"},
      {R"({"prompt": "x", "best_of": 3})", "best_of", "must be 1"},
      {R"({"prompt": "x", "suffix": "end"})", "suffix", "not supported"},
      {R"({"prompt": "x", "logprobs": true})", "logprobs",
       "must be an integer"},
  };
  for (const BadChat& c : bad) {
    SCOPED_TRACE(c.body);
    absl::StatusOr<OpenAiRequest> e = FromCompletion(Parse(c.body));
    ASSERT_THAT(
        e, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
    EXPECT_EQ(FieldOf(e.status()), c.param);
  }
}

TEST(HttpRequestTest, ChatTranslatesEveryField) {
  absl::StatusOr<OpenAiRequest> r = FromChatCompletion(Parse(R"({
    "model": "m", "user": "u", "n": 1,
    "messages": [
      {"role": "developer", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "a"},
                                   {"type": "text", "text": "b"}]},
      {"role": "assistant", "content": null},
      {"role": "user", "content": "c", "name": "bob"}],
    "max_tokens": 10, "max_completion_tokens": 20, "temperature": 0.5,
    "top_p": 0.9, "presence_penalty": 0.1, "frequency_penalty": -0.2,
    "seed": 18446744073709551615, "stop": "END",
    "logprobs": true, "top_logprobs": 3,
    "stream": true, "stream_options": {"include_usage": true},
    "response_format": {"type": "json_schema",
                        "json_schema": {"name": "x", "strict": true,
                                        "schema": {"type": "object"}}},
    "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1,
    "ignore_eos": true, "adapter": "fr",
    "rag": {"collections": ["docs"], "top_k": 3, "min_score": 0.2,
            "filter": {"lang": "en"}, "mode": "keyword",
            "prompt_template": "{passages} {question}"},
    "tool_choice": "none", "parallel_tool_calls": true, "store": false})"));
  ASSERT_TRUE(r.ok()) << r.status();
  const lumen::v1::GenerateRequest& g = r->request;
  EXPECT_EQ(g.model(), "m");
  ASSERT_EQ(g.messages_size(), 4);
  EXPECT_EQ(g.messages(0).role(), "system");
  EXPECT_EQ(g.messages(1).content(), "a\nb");
  EXPECT_EQ(g.messages(2).role(), "assistant");
  EXPECT_EQ(g.messages(2).content(), "");
  EXPECT_EQ(g.messages(3).content(), "c");
  const lumen::v1::SamplingParams& s = g.sampling();
  EXPECT_EQ(s.max_tokens(), 20u);  // max_completion_tokens wins
  EXPECT_EQ(r->ParamOf("sampling.max_tokens"), "max_completion_tokens");
  EXPECT_FLOAT_EQ(s.temperature(), 0.5f);
  EXPECT_FLOAT_EQ(s.top_p(), 0.9f);
  EXPECT_FLOAT_EQ(s.presence_penalty(), 0.1f);
  EXPECT_FLOAT_EQ(s.frequency_penalty(), -0.2f);
  EXPECT_EQ(s.seed(), 18446744073709551615ull);
  ASSERT_EQ(s.stop_size(), 1);
  EXPECT_EQ(s.stop(0), "END");
  EXPECT_EQ(r->ParamOf("sampling.stop[0]"), "stop");
  EXPECT_EQ(s.logprobs(), 3u);
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 3);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(s.json_schema(), R"({"type":"object"})");
  EXPECT_EQ(s.top_k(), 40u);
  EXPECT_FLOAT_EQ(s.min_p(), 0.05f);
  EXPECT_FLOAT_EQ(s.repetition_penalty(), 1.1f);
  EXPECT_TRUE(s.ignore_eos());
  EXPECT_EQ(g.adapter(), "fr");
  ASSERT_EQ(g.rag().collections_size(), 1);
  EXPECT_EQ(g.rag().collections(0), "docs");
  EXPECT_EQ(g.rag().top_k(), 3u);
  EXPECT_DOUBLE_EQ(g.rag().min_score(), 0.2);
  EXPECT_EQ(g.rag().filter().at("lang"), "en");
  EXPECT_EQ(g.rag().mode(), lumen::v1::SEARCH_MODE_KEYWORD);
  EXPECT_EQ(g.rag().prompt_template(), "{passages} {question}");
}

TEST(HttpRequestTest, ResponseFormatAndLogprobDefaults) {
  const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
  absl::StatusOr<OpenAiRequest> r = FromChatCompletion(
      Parse("{" + msgs + R"(, "response_format": {"type": "json_object"}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->request.sampling().json_object());
  EXPECT_EQ(r->ParamOf("sampling.json_object"), "response_format");

  r = FromChatCompletion(
      Parse("{" + msgs + R"(, "response_format": {"type": "text"}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request.sampling().constraint_case(),
            lumen::v1::SamplingParams::CONSTRAINT_NOT_SET);

  // logprobs without alternatives: the engine reports one, none returned.
  r = FromChatCompletion(Parse("{" + msgs + R"(, "logprobs": true})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request.sampling().logprobs(), 1u);
  EXPECT_EQ(r->top_logprobs, 0);
  r = FromCompletion(Parse(R"({"prompt": "x", "logprobs": 0})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->request.sampling().logprobs(), 1u);
  EXPECT_EQ(r->top_logprobs, 0);
  // top_logprobs 0 without logprobs asks for nothing.
  r = FromChatCompletion(Parse("{" + msgs + R"(, "top_logprobs": 0})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->logprobs);
  EXPECT_EQ(r->request.sampling().logprobs(), 0u);
  // Absent or null: nothing asked.
  r = FromCompletion(Parse(R"({"prompt": "x", "logprobs": null,
                               "temperature": null, "stop": null})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->logprobs);
  EXPECT_EQ(r->request.sampling().logprobs(), 0u);
  EXPECT_FALSE(r->request.sampling().has_temperature());
  EXPECT_EQ(r->request.sampling().stop_size(), 0);
}

// The shared request builder validates ranges; its proto paths come back
// as the names the client used.
TEST(HttpRequestTest, BuilderErrorsComeBackInTheClientsTerms) {
  struct Case {
    std::string body;
    bool chat;
    std::string param;
    std::string message;
  };
  const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
  const std::vector<Case> cases = {
      {"{" + msgs + R"(, "top_p": 1.5})", true, "top_p",
       "top_p must be in (0, 1] (got 1.5)"},
      {"{" + msgs + R"(, "temperature": -1})", true, "temperature",
       "temperature must be in [0, 100]"},
      {"{" + msgs + R"(, "max_completion_tokens": 0})", true,
       "max_completion_tokens", "max_completion_tokens must be >= 1"},
      {"{" + msgs + R"(, "max_tokens": 0})", true, "max_tokens",
       "max_tokens must be >= 1"},
      {"{" + msgs + R"(, "logprobs": true, "top_logprobs": 21})", true,
       "top_logprobs", "top_logprobs must be at most 20"},
      {"{" + msgs + R"(, "stop": ["ok", ""]})", true, "stop[1]",
       "stop[1] must be 1 to 256 bytes"},
      {"{" + msgs + R"(, "stop": ""})", true, "stop",
       "stop must be 1 to 256 bytes"},
      {"{" + msgs + R"(, "presence_penalty": 3})", true, "presence_penalty",
       "presence_penalty must be in [-2, 2]"},
      {"{" + msgs + R"(, "rag": {"collections": ["d"], "top_k": 99}})", true,
       "rag.top_k", "rag.top_k must be at most 50"},
      {R"({"messages": [{"role": "wizard", "content": "x"}]})", true,
       "messages[0].role", "'wizard' is not system, user, assistant or tool"},
      {R"({"messages": [{"role": "tool", "content": "x"}]})", true,
       "messages[0].tool_call_id", "is required for a tool message"},
      {R"({"messages": [{"role": "user", "content": "w"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": "}}]}]})",
       true, "messages[1].tool_calls[0].function.arguments",
       "is not valid JSON"},
      {R"({"messages": [{"role": "user", "content": "w"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c2", "content": "r"}]})",
       true, "messages[2].tool_call_id",
       "'c2' matches no tool call of an earlier assistant message"},
      {"{" + msgs + R"(, "tools": [{"type": "function"}]})", true,
       "tools[0].function", "must be an object"},
      {"{" + msgs + R"(, "tools": [{"type": "retrieval"}]})", true,
       "tools[0].type", "only function tools"},
      {"{" + msgs +
           R"(, "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]})",
       true, "tools[1].function.name", "'f' duplicates tools[0]"},
      {"{" + msgs +
           R"(, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]})",
       true, "tools[0].function.parameters.type", "must be \"object\""},
      {"{" + msgs + R"(, "tool_choice": "required"})", true, "tool_choice",
       "no tools are given"},
      {"{" + msgs +
           R"(, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"})",
       true, "tool_choice", "'sometimes' is not auto, none, required"},
      {"{" + msgs +
           R"(, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}})",
       true, "tool_choice.function.name", "'g' is not one of the tools"},
      {"{" + msgs +
           R"(, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required", "response_format": {"type": "json_object"}})",
       true, "tool_choice", "together with an output constraint"},
      {R"({"prompt": "x", "logprobs": 25})", false, "logprobs",
       "logprobs must be at most 20"},
      {R"({"prompt": "x", "min_p": 2})", false, "min_p",
       "min_p must be in [0, 1]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    absl::StatusOr<OpenAiRequest> r = c.chat ? FromChatCompletion(Parse(c.body))
                                             : FromCompletion(Parse(c.body));
    ASSERT_TRUE(r.ok()) << r.status();
    absl::Status s = ValidateGenerateRequest(r->request);
    ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    const std::string param = ParamOfError(&*r, s);
    EXPECT_EQ(param, c.param);
    HttpError e = ToHttpError(s, param);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.body["error"]["param"], c.param);
    EXPECT_THAT(e.body["error"]["message"].get<std::string>(),
                HasSubstr(c.message));
  }
}

TEST(HttpErrorTest, StatusCodesMapAsTheirGrpcCodes) {
  struct Case {
    absl::Status status;
    int http;
    std::string type;
  };
  const std::vector<Case> cases = {
      {absl::InvalidArgumentError("x"), 400, "invalid_request_error"},
      {absl::FailedPreconditionError("x"), 400, "invalid_request_error"},
      {absl::OutOfRangeError("x"), 400, "invalid_request_error"},
      {absl::UnauthenticatedError("x"), 401, "authentication_error"},
      {absl::PermissionDeniedError("x"), 403, "permission_error"},
      {absl::NotFoundError("x"), 404, "invalid_request_error"},
      {absl::AlreadyExistsError("x"), 409, "invalid_request_error"},
      {absl::ResourceExhaustedError("x"), 429, "rate_limit_error"},
      {absl::CancelledError("x"), 499, "invalid_request_error"},
      {absl::InternalError("x"), 500, "server_error"},
      {absl::UnimplementedError("x"), 501, "not_supported_error"},
      {absl::UnavailableError("x"), 503, "server_error"},
      {absl::DeadlineExceededError("x"), 504, "server_error"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.status.ToString());
    HttpError e = ToHttpError(c.status);
    EXPECT_EQ(e.status, c.http);
    EXPECT_EQ(e.body["error"]["type"], c.type);
    EXPECT_EQ(e.body["error"]["message"], "x");
    EXPECT_TRUE(e.body["error"]["param"].is_null());
    EXPECT_FALSE(e.retry_after.has_value());
  }
  EXPECT_EQ(
      ToHttpError(absl::ResourceExhaustedError("q")).body["error"]["code"],
      "rate_limit_exceeded");
  EXPECT_EQ(ToHttpError(absl::NotFoundError("m"), "model", "model_not_found")
                .body["error"]["code"],
            "model_not_found");
}

TEST(HttpErrorTest, RetryAfterComesFromTheQuotaPayload) {
  absl::Status quota = absl::ResourceExhaustedError("key over its quota");
  quota.SetPayload(kRetryAfterPayload, absl::Cord("12"));
  HttpError e = ToHttpError(quota);
  EXPECT_EQ(e.status, 429);
  ASSERT_TRUE(e.retry_after.has_value());
  EXPECT_EQ(*e.retry_after, "12");
  // Only delta-seconds ever reaches the header.
  quota.SetPayload(kRetryAfterPayload, absl::Cord("12\r\nX-Evil: 1"));
  EXPECT_FALSE(ToHttpError(quota).retry_after.has_value());
}

class FormatterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file = engine::GgufFile::Open(
        lumen::testing::TestDataPath("models/stories260K.gguf"));
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = std::move(*file);
    auto tok = engine::Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = std::move(*tok);
  }
  FormatOptions Options(Endpoint endpoint) const {
    FormatOptions o;
    o.endpoint = endpoint;
    o.id = "id-1";
    o.created = 1700000000;
    o.model = "m";
    o.tokenizer = tok_.get();
    return o;
  }
  // A delta of `ids` as the output stage makes it, with `top` alternatives.
  engine::GenerationDelta Delta(const std::vector<int32_t>& ids,
                                int top) const {
    engine::GenerationDelta d;
    for (int32_t id : ids) {
      d.text += tok_->TokenToPiece(id);
      engine::LogprobEntry e{id, tok_->TokenToPiece(id), -0.5f, {}};
      for (int k = 0; k < top; ++k) e.top.push_back({id + k, -0.5f - k});
      d.logprobs.push_back(e);
    }
    return d;
  }
  std::unique_ptr<engine::GgufFile> file_;
  std::unique_ptr<engine::Tokenizer> tok_;
};

TEST_F(FormatterTest, ChatCompletionObject) {
  FormatOptions o = Options(Endpoint::kChatCompletions);
  o.logprobs = true;
  o.top_logprobs = 1;
  CompletionFormatter f(o);
  engine::GenerationDelta all = Delta({400, 401}, /*top=*/2);
  all.finished = true;
  all.finish_reason = "stop_sequence";
  all.usage = {7, 2, 4};
  JsonOut j = f.Complete(all, {}, 0.0);
  EXPECT_EQ(j["id"], "id-1");
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "m");
  ASSERT_EQ(j["choices"].size(), 1u);
  const JsonOut& c = j["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_EQ(c["message"]["content"], all.text);
  EXPECT_EQ(c["finish_reason"], "stop");
  ASSERT_EQ(c["logprobs"]["content"].size(), 2u);
  const JsonOut& lp = c["logprobs"]["content"][0];
  EXPECT_EQ(lp["token"], tok_->TokenToDisplayPiece(400));
  EXPECT_FLOAT_EQ(lp["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(lp["top_logprobs"].size(), 1u);  // 2 reported, 1 asked
  EXPECT_EQ(lp["top_logprobs"][0]["token"], tok_->TokenToDisplayPiece(400));
  EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(j["usage"]["completion_tokens"], 2);
  EXPECT_EQ(j["usage"]["total_tokens"], 9);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  EXPECT_FALSE(j.contains("citations"));
}

TEST_F(FormatterTest, ChatChunks) {
  FormatOptions o = Options(Endpoint::kChatCompletions);
  o.include_usage = true;
  CompletionFormatter f(o);
  ASSERT_TRUE(f.HasFirstChunk());
  JsonOut first = f.FirstChunk({});
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(first.contains("usage") && first["usage"].is_null());

  EXPECT_TRUE(f.DeltaChunk(engine::GenerationDelta()).is_null());
  JsonOut chunk = f.DeltaChunk(Delta({400}, 0));
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], tok_->TokenToPiece(400));
  EXPECT_FALSE(chunk["choices"][0]["delta"].contains("role"));

  engine::GenerationDelta last;
  last.finished = true;
  last.finish_reason = "length";
  JsonOut fin = f.FinishChunk(last, 0);
  EXPECT_TRUE(fin["choices"][0]["delta"].empty());
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "length");

  JsonOut usage = f.UsageChunk({3, 4, 0});
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
}

TEST_F(FormatterTest, CompletionLogprobsAndOffsets) {
  FormatOptions o = Options(Endpoint::kCompletions);
  o.logprobs = true;
  o.top_logprobs = 2;
  CompletionFormatter f(o);
  EXPECT_FALSE(f.HasFirstChunk());  // no role chunk, no RAG
  const std::vector<int32_t> ids =
      tok_->Encode("Once upon a time", /*add_special=*/false,
                   /*parse_special=*/false);
  ASSERT_GE(ids.size(), 3u);
  engine::GenerationDelta d = Delta(ids, 3);
  d.text = tok_->Decode(ids);
  JsonOut chunk = f.DeltaChunk(d);
  const JsonOut& lp = chunk["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), ids.size());
  // Each offset points at its token in the text.
  std::string text = chunk["choices"][0]["text"];
  for (size_t i = 0; i < ids.size(); ++i) {
    const size_t offset = lp["text_offset"][i].get<size_t>();
    const std::string piece = tok_->TokenToPiece(ids[i]);
    const std::string trimmed =
        i == 0 && piece[0] == ' ' ? piece.substr(1) : piece;
    EXPECT_EQ(text.substr(offset, trimmed.size()), trimmed) << i;
    EXPECT_EQ(lp["top_logprobs"][i].size(), 2u);
  }
}

TEST(HttpSseTest, EventsAreDataLinesAndEndWithDone) {
  std::vector<std::string> writes;
  SseWriter w([&](absl::string_view bytes) {
    writes.emplace_back(bytes);
    return true;
  });
  w.Add(JsonOut{{"text", "a\nb"}});
  w.Add(JsonOut());  // null: skipped
  w.Add(JsonOut{{"n", 2}});
  w.AddDone();
  EXPECT_TRUE(w.Flush());
  ASSERT_EQ(writes.size(), 1u);  // one write for the burst
  EXPECT_EQ(
      writes[0],
      "data: {\"text\":\"a\\nb\"}\n\ndata: {\"n\":2}\n\ndata: [DONE]\n\n");
  EXPECT_TRUE(w.Flush());  // nothing pending: no write
  EXPECT_EQ(writes.size(), 1u);
  SseWriter gone([](absl::string_view) { return false; });
  gone.Add(JsonOut{{"x", 1}});
  EXPECT_FALSE(gone.Flush());
  // Invalid UTF-8 never breaks the JSON.
  EXPECT_EQ(SseEvent(JsonOut{{"t", std::string("\xff")}}),
            "data: {\"t\":\"\xEF\xBF\xBD\"}\n\n");
}

}  // namespace
}  // namespace lumen::server::http
