// lumend's OpenAI-compatible HTTP API at the wire level (raw bodies, raw
// sockets; the official SDK is driven by tests/http_sdk): SSE framing,
// greedy text equal to llama2.c's reference and to the same request over
// gRPC, malformed bodies and headers, limits, 64 concurrent streams equal
// to their solo runs, disconnects that free KV blocks, queue-full 429, keys
// shared with gRPC, HTTPS with the gRPC certificate, metrics and log
// labels, drain, embeddings, RAG citations, constrained output, and the
// README's curl example.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <latch>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "lumen/v1/admin.grpc.pb.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "lumen/v1/knowledge.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/server/daemon_process.h"
#include "tests/test_support.h"
#include "tools/synth/synth_model.h"

namespace lumen {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string Stories() {
  return testing::TestDataPath("models/stories260K.gguf");
}

std::unique_ptr<DaemonProcess> StartDaemon(std::vector<std::string> extra) {
  std::vector<std::string> args = {
      "--model=stories260K=" + Stories(), "--http-listen=127.0.0.1:0",
      "--kv-cache-mb=64", "--chat-template=chatml",
      // SixtyFourConcurrentStreamsEqualTheirSoloRuns: this fp32 model's
      // matrices switch to oneDNN at the M buckets where it timed faster at
      // load, and an f16 cache rounds that float-order difference into a
      // different sample now and then (2 runs of 3 on a loaded machine).
      "--kv-cache-type=f32"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<DaemonProcess>(args);
}

httplib::Client Client(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  c.set_write_timeout(120, 0);
  return c;
}

struct Reply {
  int status = 0;  // 0: no response
  std::string body;
  httplib::Headers headers;
  Json json;  // the body parsed, or discarded
};

Reply Send(httplib::Result r) {
  Reply out;
  if (!r) {
    out.body = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  out.json = Json::parse(r->body, nullptr, false);
  return out;
}

Reply Post(int port, const std::string& path, const std::string& body,
           const httplib::Headers& headers = {},
           const std::string& type = "application/json") {
  return Send(Client(port).Post(path.c_str(), headers, body, type.c_str()));
}

Reply Get(int port, const std::string& path,
          const httplib::Headers& headers = {}) {
  return Send(Client(port).Get(path.c_str(), headers));
}

std::string Header(const Reply& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

// A body of Server-Sent Events, checked to be exactly OpenAI's framing:
// "data: <one line>\n\n" events, the last one "data: [DONE]".
struct Sse {
  std::vector<Json> events;  // every event before [DONE]
  bool done = false;
  std::string framing_error;  // empty when the framing is exact
};

Sse ParseSse(const std::string& raw) {
  Sse sse;
  size_t at = 0;
  while (at < raw.size()) {
    const size_t end = raw.find("\n\n", at);
    if (end == std::string::npos || raw.compare(at, 6, "data: ") != 0) {
      sse.framing_error =
          "not a 'data: ...\\n\\n' event at byte " + std::to_string(at);
      return sse;
    }
    const std::string data = raw.substr(at + 6, end - at - 6);
    if (data.find('\n') != std::string::npos) {
      sse.framing_error = "an event spans several lines";
      return sse;
    }
    at = end + 2;
    if (sse.done) {
      sse.framing_error = "events after [DONE]";
      return sse;
    }
    if (data == "[DONE]") {
      sse.done = true;
      continue;
    }
    Json j = Json::parse(data, nullptr, false);
    if (j.is_discarded()) {
      sse.framing_error = "event is not JSON: " + data;
      return sse;
    }
    sse.events.push_back(std::move(j));
  }
  return sse;
}

// The text of a chat or completion stream.
std::string StreamText(const Sse& sse) {
  std::string text;
  for (const Json& e : sse.events) {
    if (!e.contains("choices") || e["choices"].empty()) continue;
    const Json& c = e["choices"][0];
    if (c.contains("delta") && c["delta"].contains("content"))
      text += c["delta"]["content"].get<std::string>();
    if (c.contains("text")) text += c["text"].get<std::string>();
  }
  return text;
}

std::string GrpcChatText(
    const DaemonProcess& d,
    const std::vector<std::pair<std::string, std::string>>& messages,
    int max_tokens) {
  v1::GenerateRequest req;
  for (const auto& [role, content] : messages) {
    auto* m = req.add_messages();
    m->set_role(role);
    m->set_content(content);
  }
  req.mutable_sampling()->set_max_tokens(max_tokens);
  req.mutable_sampling()->set_temperature(0);
  grpc::ClientContext ctx;
  auto reader = v1::Inference::NewStub(d.Channel())->GenerateStream(&ctx, req);
  v1::GenerateStreamResponse msg;
  std::string text;
  while (reader->Read(&msg)) text += msg.text();
  EXPECT_TRUE(reader->Finish().ok());
  return text;
}

v1::ModelStats Stats(const DaemonProcess& d) {
  grpc::ClientContext ctx;
  v1::GetStatsResponse resp;
  EXPECT_TRUE(v1::Admin::NewStub(d.Channel())
                  ->GetStats(&ctx, v1::GetStatsRequest(), &resp)
                  .ok());
  return resp.models_size() > 0 ? resp.models(0) : v1::ModelStats();
}

// Bounded: the engine frees an aborted request's blocks at its next step.
bool WaitIdle(const DaemonProcess& d) {
  for (int i = 0; i < 1000; ++i) {
    const v1::ModelStats s = Stats(d);
    if (s.running() == 0 && s.queue_depth() == 0 && s.kv_blocks_used() == 0)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Sends raw bytes on a new connection and reads the reply until the server
// closes or `until` appears.
std::string RawExchange(int port, const std::string& bytes,
                        const std::string& until) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)!write(fd, bytes.data(), bytes.size());
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    reply.append(buf, n);
    if (!until.empty() && reply.find(until) != std::string::npos) break;
  }
  close(fd);
  return reply;
}

// One lumend serving stories260K with the chatml template, shared by the
// tests that need nothing special.
class HttpApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = StartDaemon({"--ctx-size=1024"}).release();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(daemon_->ok()) << daemon_->Log();
    ASSERT_GT(daemon_->http_port(), 0) << daemon_->Log();
  }
  static int port() { return daemon_->http_port(); }
  static DaemonProcess* daemon_;
};
DaemonProcess* HttpApiTest::daemon_ = nullptr;

const std::vector<std::pair<std::string, std::string>> kConversation = {
    {"system", "You tell short stories."},
    {"user", "Tell me about a cat who found a ball."}};

Json ChatBody(int max_tokens, bool stream) {
  Json messages = Json::array();
  for (const auto& [role, content] : kConversation)
    messages.push_back({{"role", role}, {"content", content}});
  Json body = {{"model", "stories260K"},
               {"messages", messages},
               {"max_tokens", max_tokens},
               {"temperature", 0}};
  if (stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return body;
}

TEST_F(HttpApiTest, ChatStreamIsOpenAisFramingAndEqualsGrpc) {
  Reply r = Post(port(), "/v1/chat/completions", ChatBody(48, true).dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(absl::StartsWith(Header(r, "Content-Type"), "text/event-stream"));
  Sse sse = ParseSse(r.body);
  ASSERT_EQ(sse.framing_error, "") << r.body;
  ASSERT_TRUE(sse.done);
  ASSERT_GE(sse.events.size(), 4u);
  const std::string id = sse.events[0]["id"];
  EXPECT_TRUE(absl::StartsWith(id, "chatcmpl-"));
  for (const Json& e : sse.events) {
    EXPECT_EQ(e["id"], id);
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["model"], "stories260K");
    EXPECT_TRUE(e["created"].is_number_integer());
    ASSERT_TRUE(e.contains("usage"));  // include_usage: null until the last
  }
  // First: the role; then content deltas; then the finish reason with an
  // empty delta; last the usage with no choices.
  EXPECT_EQ(sse.events[0]["choices"][0]["delta"]["role"], "assistant");
  const Json& finish = sse.events[sse.events.size() - 2];
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(finish["choices"][0]["delta"].empty());
  EXPECT_TRUE(finish["usage"].is_null());
  const Json& usage = sse.events.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 48);
  EXPECT_GT(usage["usage"]["prompt_tokens"].get<int>(), 10);
  EXPECT_EQ(usage["usage"]["total_tokens"],
            usage["usage"]["prompt_tokens"].get<int>() + 48);
  for (size_t i = 1; i + 2 < sse.events.size(); ++i) {
    const Json& c = sse.events[i]["choices"][0];
    EXPECT_TRUE(c["finish_reason"].is_null());
    EXPECT_FALSE(c["delta"].contains("role"));
    EXPECT_TRUE(sse.events[i]["usage"].is_null());
  }
  const std::string streamed = StreamText(sse);
  EXPECT_FALSE(streamed.empty());

  Reply whole =
      Post(port(), "/v1/chat/completions", ChatBody(48, false).dump());
  ASSERT_EQ(whole.status, 200) << whole.body;
  EXPECT_EQ(whole.json["object"], "chat.completion");
  EXPECT_EQ(whole.json["choices"][0]["message"]["content"], streamed);
  EXPECT_EQ(whole.json["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(GrpcChatText(*daemon_, kConversation, 48), streamed);
}

TEST_F(HttpApiTest, TokenIdPromptReproducesLlama2cGreedyText) {
  Json ref = Json::parse(testing::ReadFile(
      testing::TestDataPath("models/stories260K.greedy.json")));
  Json body = {
      {"prompt", Json::array({1})}, {"max_tokens", 200}, {"temperature", 0}};
  Reply r = Post(port(), "/v1/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["object"], "text_completion");
  EXPECT_EQ(r.json["choices"][0]["text"], ref["printed_text"]);
  EXPECT_EQ(r.json["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r.json["usage"]["prompt_tokens"], 1);
  EXPECT_EQ(r.json["usage"]["completion_tokens"], 200);

  body["stream"] = true;
  Reply s = Post(port(), "/v1/completions", body.dump());
  ASSERT_EQ(s.status, 200) << s.body;
  Sse sse = ParseSse(s.body);
  ASSERT_EQ(sse.framing_error, "");
  ASSERT_TRUE(sse.done);
  EXPECT_EQ(StreamText(sse), ref["printed_text"]);
  EXPECT_EQ(sse.events.back()["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(sse.events.back().contains("usage"));  // not asked for
}

struct BadRequest {
  std::string path;
  std::string content_type;
  std::string body;
  int status;
  std::string param;  // "" for null
  std::string message;
};

TEST_F(HttpApiTest, BadRequestsGetOpenAisErrorNamingTheField) {
  const std::string chat = "/v1/chat/completions";
  const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
  const std::vector<BadRequest> cases = {
      {chat, "application/json", "{\"messages\": [", 400, "", "not valid JSON"},
      {chat, "application/json", "[1, 2]", 400, "", "must be a JSON object"},
      {chat, "application/json", "", 400, "", "not valid JSON"},
      {chat, "application/json", std::string(100, '[') + std::string(100, ']'),
       400, "", "deeper than 64"},
      {chat, "application/json", "{\"messages\": \"\xc3\x28\"}", 400, "",
       "not valid JSON"},
      {chat, "text/plain", "{" + msgs + "}", 400, "",
       "Content-Type must be application/json"},
      {chat, "application/x-www-form-urlencoded", "a=b", 400, "",
       "Content-Type must be application/json"},
      {chat, "application/json", R"({"messages": 5})", 400, "messages",
       "must be an array"},
      {chat, "application/json", "{" + msgs + R"(, "temperature": "0.5"})", 400,
       "temperature", "must be a number (got string)"},
      {chat, "application/json", "{" + msgs + R"(, "max_tokens": "9"})", 400,
       "max_tokens", "must be an integer"},
      {chat, "application/json", "{" + msgs + R"(, "n": 3})", 400, "n",
       "must be 1"},
      {chat, "application/json", "{" + msgs + R"(, "top_p": 7})", 400, "top_p",
       "top_p must be in (0, 1]"},
      {chat, "application/json",
       "{" + msgs + R"(, "max_completion_tokens": 0})", 400,
       "max_completion_tokens", "must be >= 1"},
      {chat, "application/json",
       R"({"messages": [{"role": "wizard", "content": "x"}]})", 400,
       "messages[0].role", "'wizard' is not system, user, assistant or tool"},
      {chat, "application/json",
       "{" + msgs +
           R"(, "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "strnig"}}}})",
       400, "response_format.json_schema.schema", "strnig"},
      {"/v1/completions", "application/json", R"({"prompt": [1, 99999]})", 400,
       "prompt[1]", "outside the vocabulary"},
  };
  for (const BadRequest& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 120));
    Reply r = Post(port(), c.path, c.body, {}, c.content_type);
    ASSERT_EQ(r.status, c.status) << r.body;
    ASSERT_TRUE(r.json.is_object()) << r.body;
    const Json& e = r.json["error"];
    EXPECT_THAT(e["message"].get<std::string>(), HasSubstr(c.message));
    EXPECT_EQ(e["type"], "invalid_request_error");
    if (c.param.empty()) {
      EXPECT_TRUE(e["param"].is_null()) << e;
    } else {
      EXPECT_EQ(e["param"], c.param);
    }
    EXPECT_TRUE(e.contains("code"));
  }
  // A prompt longer than the context (1024) is refused before the engine.
  Json longer = {{"prompt", Json::array()}, {"max_tokens", 1}};
  for (int i = 0; i < 1100; ++i) longer["prompt"].push_back(1);
  Reply r = Post(port(), "/v1/completions", longer.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("longer than the context"));
}

TEST_F(HttpApiTest, OversizedBodiesAre413AndTheConnectionLivesOn) {
  const std::string big(9 << 20, 'x');
  httplib::Client c = Client(port());
  c.set_keep_alive(true);
  // With Content-Length: httplib skips the body and answers.
  Reply r = Send(c.Post("/v1/chat/completions", big, "application/json"));
  ASSERT_EQ(r.status, 413) << r.body.substr(0, 200);
  EXPECT_THAT(r.json["error"]["message"].get<std::string>(),
              HasSubstr("exceeds"));
  // Chunked (no length): read up to the limit, the rest drained.
  size_t sent = 0;
  Reply chunked = Send(c.Post(
      "/v1/chat/completions",
      [&](size_t, httplib::DataSink& sink) {
        const size_t n = std::min<size_t>(1 << 16, big.size() - sent);
        sink.write(big.data() + sent, n);
        sent += n;
        if (sent == big.size()) sink.done();
        return true;
      },
      "application/json"));
  ASSERT_EQ(chunked.status, 413) << chunked.body.substr(0, 200);
  EXPECT_EQ(chunked.json["error"]["type"], "invalid_request_error");
  // The same keep-alive client goes on working.
  Reply ok =
      Send(c.Post("/v1/completions", R"({"prompt": [1], "max_tokens": 3})",
                  "application/json"));
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(HttpApiTest, MalformedHttpIsAnsweredNotCrashed) {
  std::string reply = RawExchange(port(), "GARBAGE\r\n\r\n", "}}");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 400")) << reply;
  EXPECT_THAT(reply, HasSubstr("\"error\""));
  // A header line longer than httplib's 8 KiB limit.
  reply = RawExchange(port(),
                      "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " +
                          std::string(20000, 'a') + "\r\n\r\n",
                      "}}");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 400")) << reply.substr(0, 200);
  // A request line longer than 8 KiB.
  reply = RawExchange(
      port(),
      "GET /" + std::string(10000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", "}}");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 414")) << reply.substr(0, 200);
  // A chunked body that breaks off mid-chunk.
  reply = RawExchange(port(),
                      "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                      "Content-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
                      "}}");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 400")) << reply.substr(0, 200);
  // The server still serves.
  EXPECT_EQ(Get(port(), "/health").status, 200);
}

TEST_F(HttpApiTest, RoutesModelsAndHealth) {
  Reply health = Get(port(), "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json["status"], "ok");
  Reply models = Get(port(), "/v1/models");
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.json["object"], "list");
  ASSERT_EQ(models.json["data"].size(), 1u);
  EXPECT_EQ(models.json["data"][0]["id"], "stories260K");
  EXPECT_EQ(models.json["data"][0]["object"], "model");
  EXPECT_EQ(models.json["data"][0]["owned_by"], "lumen");
  Reply one = Get(port(), "/v1/models/stories260K");
  EXPECT_EQ(one.status, 200);
  EXPECT_EQ(one.json["id"], "stories260K");
  Reply missing = Get(port(), "/v1/models/gpt-4");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json["error"]["code"], "model_not_found");
  Reply route = Post(port(), "/v1/responses", "{}");
  EXPECT_EQ(route.status, 404);
  EXPECT_THAT(route.json["error"]["message"].get<std::string>(),
              HasSubstr("no route for POST /v1/responses"));
  Reply model = Post(port(), "/v1/chat/completions",
                     R"({"model": "gpt-4o", "messages": [{"role": "user",
                         "content": "hi"}]})");
  EXPECT_EQ(model.status, 404);
  EXPECT_EQ(model.json["error"]["param"], "model");
  EXPECT_EQ(model.json["error"]["code"], "model_not_found");
  Reply adapter =
      Post(port(), "/v1/completions", R"({"prompt": "x", "adapter": "nope"})");
  EXPECT_EQ(adapter.status, 404);
  EXPECT_EQ(adapter.json["error"]["param"], "adapter");
  Reply embeddings = Post(port(), "/v1/embeddings", R"({"input": "x"})");
  EXPECT_EQ(embeddings.status, 400);
  EXPECT_THAT(embeddings.body, HasSubstr("--embedding-model"));
}

// Constrained decoding through response_format: the greedy output is the
// one JSON document the schema allows.
TEST_F(HttpApiTest, ResponseFormatConstrainsTheOutput) {
  Json body = ChatBody(64, false);
  body["response_format"] = {
      {"type", "json_schema"},
      {"json_schema",
       {{"name", "pick"},
        {"schema",
         {{"type", "object"},
          {"properties", {{"color", {{"enum", {"red", "green"}}}}}},
          {"required", {"color"}},
          {"additionalProperties", false}}}}}};
  Reply r = Post(port(), "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["finish_reason"], "stop");
  Json out =
      Json::parse(r.json["choices"][0]["message"]["content"].get<std::string>(),
                  nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.body;
  EXPECT_EQ(out.size(), 1u);
  EXPECT_TRUE(out["color"] == "red" || out["color"] == "green") << out;
}

// The schema's properties come out in the order the client declared them
// (the body is parsed order-preserving; "zeta" sorts after "alpha").
TEST_F(HttpApiTest, ResponseFormatKeepsTheDeclaredPropertyOrder) {
  const std::string body = R"({"messages": [{"role": "user", "content": "Hi"}],
      "max_tokens": 64, "temperature": 0,
      "response_format": {"type": "json_schema", "json_schema": {"name": "o",
        "schema": {"type": "object", "additionalProperties": false,
          "properties": {"zeta": {"enum": ["z"]}, "alpha": {"enum": ["a"]}},
          "required": ["zeta", "alpha"]}}}})";
  Reply r = Post(port(), "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string content = r.json["choices"][0]["message"]["content"];
  const size_t zeta = content.find("\"zeta\""),
               alpha = content.find("\"alpha\"");
  ASSERT_NE(zeta, std::string::npos) << content;
  ASSERT_NE(alpha, std::string::npos) << content;
  EXPECT_LT(zeta, alpha) << content;
}

// Every request in flight at once: 64 sampled streams, each equal to the
// same request run alone (same seed, same request: same output).
TEST_F(HttpApiTest, SixtyFourConcurrentStreamsEqualTheirSoloRuns) {
  constexpr int kStreams = 64;
  auto body = [](int i, bool stream) {
    Json b = {{"prompt", absl::StrCat("Once upon a time there was a ",
                                      i % 2 ? "dog" : "girl", " number ", i)},
              {"max_tokens", 40},
              {"temperature", 0.9},
              {"seed", 1000 + i},
              {"stream", stream}};
    return b.dump();
  };
  std::vector<std::string> solo(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    Reply r = Post(port(), "/v1/completions", body(i, false));
    ASSERT_EQ(r.status, 200) << r.body;
    solo[i] = r.json["choices"][0]["text"];
  }
  std::vector<std::future<Reply>> streams;
  std::latch ready(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::async(std::launch::async, [&, i] {
      // Start together, so the engine batches all of them.
      ready.arrive_and_wait();
      return Post(port(), "/v1/completions", body(i, true));
    }));
  }
  int same = 0;
  for (int i = 0; i < kStreams; ++i) {
    Reply r = streams[i].get();
    ASSERT_EQ(r.status, 200) << r.body;
    Sse sse = ParseSse(r.body);
    ASSERT_EQ(sse.framing_error, "");
    ASSERT_TRUE(sse.done);
    EXPECT_EQ(StreamText(sse), solo[i]) << "stream " << i;
    same += StreamText(sse) == solo[i];
  }
  EXPECT_EQ(same, kStreams);
  EXPECT_NE(solo[0], solo[1]);  // the requests really differ
}

TEST_F(HttpApiTest, ReadmeCurlExampleWorks) {
  const std::string readme =
      testing::ReadFile(std::string(LUMEN_SOURCE_DIR) + "/README.md");
  // The README's first curl command against /v1/chat/completions.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      readme, m, std::regex("(curl [^`]*?/v1/chat/completions[^`]*?)\n```")))
      << "README.md has no curl example for /v1/chat/completions";
  const std::string command = absl::StrReplaceAll(
      m[1].str(),
      {{"127.0.0.1:8080", absl::StrCat("127.0.0.1:", port())}, {"\\\n", " "}});
  testing::CommandResult out = testing::RunCommand(command);
  ASSERT_EQ(out.exit_code, 0) << command << "\n" << out.err;
  Json j = Json::parse(out.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << out.out;
  EXPECT_EQ(j["object"], "chat.completion") << out.out;
  EXPECT_FALSE(
      j["choices"][0]["message"]["content"].get<std::string>().empty());
}

// A client that disconnects mid-stream: the request is aborted and its KV
// blocks freed, far short of the 16000 tokens asked for (how far the server
// ran ahead of the reader depends on thread scheduling; see
// PipelineTest.CancelStopsGeneration).
TEST(HttpDaemonTest, DisconnectAbortsTheRequestAndFreesItsBlocks) {
  auto d = StartDaemon({"--ctx-size=16384"});
  ASSERT_TRUE(d->ok()) << d->Log();
  Json body = {
      {"prompt", Json::array({1})}, {"max_tokens", 16000}, {"temperature", 0},
      {"ignore_eos", true},         {"logprobs", 0},       {"stream", true}};
  httplib::Client c = Client(d->http_port());
  int received = 0;  // tokens: one logprob entry each
  std::string pending;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    pending.append(data, n);
    size_t end;
    while ((end = pending.find("\n\n")) != std::string::npos) {
      Json e = Json::parse(pending.substr(6, end - 6), nullptr, false);
      pending.erase(0, end + 2);
      if (e.is_object() && e["choices"].size() == 1)
        received += e["choices"][0]["logprobs"]["tokens"].size();
    }
    return received < 40;  // then hang up
  };
  httplib::Result r = c.send(req);
  EXPECT_FALSE(r);  // cancelled by the receiver
  c.stop();
  ASSERT_GE(received, 40);
  ASSERT_TRUE(WaitIdle(*d)) << "KV blocks still held";
  const v1::ModelStats s = Stats(*d);
  EXPECT_EQ(s.kv_blocks_used(), 0u);
  EXPECT_LT(s.generation_tokens(), 16000u)
      << "generation went on after the client left";
  // The output thread logs the request after the engine's stats go idle.
  for (int i = 0; i < 1000 && !absl::StrContains(d->Log(), "finish="); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_THAT(d->Log(), HasSubstr("api=http"));
  EXPECT_THAT(d->Log(), HasSubstr("finish=cancelled"));
}

// The same for a non-streaming request: the client sends it and hangs up at
// once; the server notices while it waits and cancels.
TEST(HttpDaemonTest, NonStreamingDisconnectAbortsTheRequest) {
  auto d = StartDaemon({"--ctx-size=4096"});
  ASSERT_TRUE(d->ok()) << d->Log();
  const std::string body =
      R"({"prompt": [1], "max_tokens": 4000, "temperature": 0,
          "ignore_eos": true})";
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(d->http_port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = absl::StrCat(
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nContent-Length: ",
      body.size(), "\r\n\r\n", body);
  ASSERT_EQ(write(fd, request.data(), request.size()),
            static_cast<ssize_t>(request.size()));
  close(fd);
  // Bounded wait for the request to be logged as cancelled.
  for (int i = 0; i < 1000 && !absl::StrContains(d->Log(), "finish="); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(WaitIdle(*d));
  EXPECT_THAT(d->Log(), HasSubstr("finish=cancelled"));
  EXPECT_LT(Stats(*d).generation_tokens(), 4000u)
      << "the request ran to its end after the client left";
}

TEST(HttpDaemonTest, FullQueueIs429) {
  auto d = StartDaemon({"--ctx-size=2048", "--max-running=1", "--max-queue=1"});
  ASSERT_TRUE(d->ok()) << d->Log();
  const std::string body =
      R"({"prompt": [1], "max_tokens": 1500, "temperature": 0,
          "ignore_eos": true})";
  std::vector<std::future<Reply>> burst;
  std::latch ready(6);
  for (int i = 0; i < 6; ++i) {
    burst.push_back(std::async(std::launch::async, [&] {
      ready.arrive_and_wait();
      return Post(d->http_port(), "/v1/completions", body);
    }));
  }
  int ok = 0, limited = 0;
  for (auto& f : burst) {
    Reply r = f.get();
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      EXPECT_EQ(r.json["error"]["type"], "rate_limit_error");
      EXPECT_EQ(r.json["error"]["code"], "rate_limit_exceeded");
      EXPECT_THAT(r.json["error"]["message"].get<std::string>(),
                  HasSubstr("queue is full"));
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(limited, 1);
  EXPECT_EQ(ok + limited, 6);
}

// The --api-keys file serves both front ends: the same keys, the same
// tenants (a tenant's prompt prefix is never reused for another).
TEST(HttpDaemonTest, ApiKeysAndTenantsAreGrpcs) {
  const std::string dir = testing::MakeTempDir();
  std::ofstream(dir + "/keys.txt") << "key-a alpha user\nkey-b beta user\n";
  auto d = StartDaemon({"--api-keys=" + dir + "/keys.txt"});
  ASSERT_TRUE(d->ok()) << d->Log();
  const int port = d->http_port();
  const std::string body = Json{
      {"prompt",
       "Once upon a time there was a cat who liked to play in the sun "
       "all day long with her friends in the big green park."},
      {"max_tokens", 2}}.dump();
  Reply none = Post(port, "/v1/completions", body);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json["error"]["type"], "authentication_error");
  Reply wrong =
      Post(port, "/v1/completions", body, {{"Authorization", "Bearer key-z"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_THAT(wrong.body, HasSubstr("unknown API key"));
  Reply basic = Post(port, "/v1/completions", body,
                     {{"Authorization", "Basic a2V5LWE="}});
  EXPECT_EQ(basic.status, 401);
  EXPECT_EQ(Get(port, "/v1/models").status, 401);
  EXPECT_EQ(Get(port, "/health").status, 200);  // probes need no key
  auto cached = [&](const std::string& key) {
    Reply r = Post(port, "/v1/completions", body,
                   {{"Authorization", "Bearer " + key}});
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>();
  };
  EXPECT_EQ(cached("key-a"), 0);
  EXPECT_GT(cached("key-a"), 0);
  EXPECT_EQ(cached("key-b"), 0) << "tenant beta reused alpha's KV over HTTP";
  // The scheme is case-insensitive; the key works for gRPC too.
  EXPECT_EQ(
      Post(port, "/v1/completions", body, {{"Authorization", "bearer key-b"}})
          .status,
      200);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer key-a");
  v1::ListModelsResponse models;
  EXPECT_TRUE(v1::Inference::NewStub(d->Channel())
                  ->ListModels(&ctx, v1::ListModelsRequest(), &models)
                  .ok());
}

TEST(HttpDaemonTest, HttpsUsesTheGrpcCertificate) {
  const std::string dir = testing::MakeTempDir();
  testing::CommandResult cert = testing::RunCommand(
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + dir +
      "/key.pem -out " + dir + "/cert.pem -days 1 -subj /CN=127.0.0.1 " +
      "-addext subjectAltName=IP:127.0.0.1 2>&1");
  ASSERT_EQ(cert.exit_code, 0) << cert.out;
  auto d = StartDaemon(
      {"--tls-cert=" + dir + "/cert.pem", "--tls-key=" + dir + "/key.pem"});
  ASSERT_TRUE(d->ok()) << d->Log();
  EXPECT_THAT(d->Log(), HasSubstr("HTTP API on https://"));
  httplib::SSLClient tls("127.0.0.1", d->http_port());
  tls.set_ca_cert_path((dir + "/cert.pem").c_str());
  tls.enable_server_certificate_verification(true);
  Reply health = Send(tls.Get("/health"));
  EXPECT_EQ(health.status, 200);
  Reply r = Send(tls.Post("/v1/completions",
                          R"({"prompt": [1], "max_tokens": 8,
                              "temperature": 0})",
                          "application/json"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["text"], "Once upon a time, there was a");
  // Plain HTTP to the HTTPS port gets no answer.
  EXPECT_EQ(Get(d->http_port(), "/health").status, 0);
}

TEST(HttpDaemonTest, MetricsAndTheRequestLogSayHttp) {
  auto d = StartDaemon({"--metrics-listen=127.0.0.1:0"});
  ASSERT_TRUE(d->ok()) << d->Log();
  ASSERT_EQ(Post(d->http_port(), "/v1/completions",
                 R"({"prompt": [1], "max_tokens": 4})")
                .status,
            200);
  ASSERT_EQ(
      Post(d->http_port(), "/v1/completions", R"({"prompt": [1], "top_p": 9})")
          .status,
      400);
  const std::string metrics = testing::HttpGet(d->metrics_port(), "/metrics");
  EXPECT_TRUE(std::regex_search(
      metrics, std::regex("lumen_requests_total\\{[^}]*api=\"http\"[^}]*"
                          "status=\"OK\"[^}]*\\} 1")))
      << metrics;
  EXPECT_TRUE(std::regex_search(
      metrics, std::regex("lumen_requests_total\\{[^}]*api=\"http\"[^}]*"
                          "status=\"INVALID_ARGUMENT\"[^}]*\\} 1")))
      << metrics;
  EXPECT_THAT(d->Log(), HasSubstr("api=http model=stories260K"));
}

// SIGTERM with a stream in flight: /health says draining, new requests get
// 503, the stream ends normally, lumend exits 0.
TEST(HttpDaemonTest, DrainFinishesStreamsAndRefusesNewWork) {
  // A grace far above the stream's few seconds, also under TSan.
  auto d = StartDaemon({"--ctx-size=16384", "--shutdown-grace=120"});
  ASSERT_TRUE(d->ok()) << d->Log();
  const int port = d->http_port();
  std::promise<void> first_chunk;
  std::string raw;
  auto stream = std::async(std::launch::async, [&] {
    httplib::Client c = Client(port);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body =
        // Seconds of stories260K: still streaming while the drain begins,
        // however slowly this thread is scheduled.
        R"({"prompt": [1], "max_tokens": 4000, "temperature": 0,
            "ignore_eos": true, "stream": true})";
    req.set_header("Content-Type", "application/json");
    bool signalled = false;
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      raw.append(data, n);
      if (!signalled) {
        signalled = true;
        first_chunk.set_value();
      }
      return true;
    };
    return Send(c.send(req)).status;
  });
  first_chunk.get_future().wait();
  d->Signal(SIGTERM);
  Reply health;
  // Until lumend has seen the signal (bounded).
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    health = Get(port, "/health");
    if (health.status != 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.json["status"], "draining");
  Reply refused = Post(port, "/v1/completions", R"({"prompt": [1]})");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(stream.get(), 200);
  Sse sse = ParseSse(raw);
  EXPECT_EQ(sse.framing_error, "");
  EXPECT_TRUE(sse.done);
  ASSERT_FALSE(sse.events.empty());
  EXPECT_EQ(sse.events.back()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(d->Wait(), 0);
}

std::string Bert() {
  tools::SynthOptions o;
  o.arch = "bert";
  o.dim = 64;
  o.layers = 2;
  o.heads = 4;
  o.kv_heads = 4;
  o.ffn = 128;
  o.ctx = 128;
  o.seed = 7;
  o.vocab_from = testing::TestDataPath("vocab/ggml-vocab-bert-bge.gguf");
  const std::string path = testing::MakeTempDir() + "/bert.gguf";
  EXPECT_TRUE(tools::Synthesize(o, path).ok());
  return path;
}

// /v1/embeddings gives gRPC Embed's vectors, as floats or base64; RAG
// citations come in the response and in the first stream chunk.
TEST(HttpDaemonTest, EmbeddingsAndRagCitations) {
  auto d = StartDaemon({"--embedding-model=" + Bert()});
  ASSERT_TRUE(d->ok()) << d->Log();
  const int port = d->http_port();
  grpc::ClientContext ctx;
  v1::EmbedRequest er;
  er.add_texts("a cat on a mat");
  er.add_texts("the sun is hot");
  v1::EmbedResponse grpc_vectors;
  ASSERT_TRUE(v1::Inference::NewStub(d->Channel())
                  ->Embed(&ctx, er, &grpc_vectors)
                  .ok());
  Reply floats = Post(port, "/v1/embeddings",
                      R"({"model": "bert", "input": ["a cat on a mat",
                          "the sun is hot"], "encoding_format": "float"})");
  ASSERT_EQ(floats.status, 200) << floats.body;
  EXPECT_EQ(floats.json["object"], "list");
  EXPECT_EQ(floats.json["model"], "bert");
  ASSERT_EQ(floats.json["data"].size(), 2u);
  EXPECT_GT(floats.json["usage"]["prompt_tokens"].get<int>(), 4);
  Reply b64 = Post(port, "/v1/embeddings",
                   R"({"input": ["a cat on a mat", "the sun is hot"],
                       "encoding_format": "base64"})");
  ASSERT_EQ(b64.status, 200) << b64.body;
  for (int i = 0; i < 2; ++i) {
    const Json& f = floats.json["data"][i];
    EXPECT_EQ(f["index"], i);
    EXPECT_EQ(f["object"], "embedding");
    ASSERT_EQ(f["embedding"].size(), 64u);
    std::string raw;
    ASSERT_TRUE(absl::Base64Unescape(
        b64.json["data"][i]["embedding"].get<std::string>(), &raw));
    ASSERT_EQ(raw.size(), 64 * sizeof(float));
    for (int k = 0; k < 64; ++k) {
      float v;
      std::memcpy(&v, raw.data() + k * sizeof(float), sizeof(float));
      EXPECT_EQ(v, grpc_vectors.embeddings(i).values(k));
      EXPECT_EQ(f["embedding"][k].get<float>(),
                grpc_vectors.embeddings(i).values(k));
    }
  }
  EXPECT_EQ(Post(port, "/v1/embeddings", R"({"input": "x", "dimensions": 32})")
                .json["error"]["param"],
            "dimensions");
  EXPECT_EQ(Post(port, "/v1/embeddings", R"({"input": [[1, 2]]})")
                .json["error"]["param"],
            "input[0]");
  EXPECT_EQ(Post(port, "/v1/embeddings",
                 R"({"input": "x", "model": "text-embedding-3-small"})")
                .status,
            404);

  // RAG: a collection over gRPC, cited over HTTP.
  auto kn = v1::Knowledge::NewStub(d->Channel());
  {
    grpc::ClientContext c1;
    v1::CreateCollectionRequest cr;
    cr.set_name("pets");
    v1::CollectionInfo info;
    ASSERT_TRUE(kn->CreateCollection(&c1, cr, &info).ok());
    grpc::ClientContext c2;
    v1::UpsertDocumentsRequest ur;
    ur.set_collection("pets");
    auto* doc = ur.add_documents();
    doc->set_id("tom");
    doc->set_text("Tom the cat sleeps on the red mat every afternoon.");
    doc->set_metadata_json(R"({"kind": "cat"})");
    v1::UpsertDocumentsResponse resp;
    ASSERT_TRUE(kn->UpsertDocuments(&c2, ur, &resp).ok());
  }
  Json chat = {
      {"messages",
       {{{"role", "user"}, {"content", "Where does Tom the cat sleep?"}}}},
      {"max_tokens", 8},
      {"rag", {{"collections", {"pets"}}, {"top_k", 2}}}};
  Reply r = Post(port, "/v1/chat/completions", chat.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json["citations"].size(), 1u) << r.body;
  EXPECT_EQ(r.json["citations"][0]["collection"], "pets");
  EXPECT_EQ(r.json["citations"][0]["document_id"], "tom");
  EXPECT_EQ(r.json["citations"][0]["metadata"]["kind"], "cat");
  EXPECT_THAT(r.json["citations"][0]["text"].get<std::string>(),
              HasSubstr("red mat"));
  chat["stream"] = true;
  Reply s = Post(port, "/v1/chat/completions", chat.dump());
  ASSERT_EQ(s.status, 200) << s.body;
  Sse sse = ParseSse(s.body);
  ASSERT_FALSE(sse.events.empty());
  ASSERT_EQ(sse.events[0]["citations"].size(), 1u) << s.body;
  EXPECT_EQ(sse.events[0]["citations"][0]["document_id"], "tom");
  Json missing = chat;
  missing["rag"]["collections"] = {"nope"};
  Reply nope = Post(port, "/v1/chat/completions", missing.dump());
  EXPECT_EQ(nope.status, 404) << nope.body;
  EXPECT_EQ(nope.json["error"]["param"], "rag.collections");
}

}  // namespace
}  // namespace lumen
