// lumend end to end: a real daemon on a free loopback port serving
// stories260K, called over gRPC.

#include <signal.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "lumen/v1/admin.grpc.pb.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "tests/server/daemon_process.h"
#include "tests/test_support.h"

namespace lumen {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;
using v1::GenerateRequest;
using v1::GenerateResponse;
using v1::GenerateStreamResponse;

std::string Stories() {
  return testing::TestDataPath("models/stories260K.gguf");
}

struct Reference {
  std::vector<int32_t> ids;
  std::string text;
};

// Reads next_ids and printed_text from stories260K.greedy.json.
Reference LoadReference() {
  const std::string json = testing::ReadFile(
      testing::TestDataPath("models/stories260K.greedy.json"));
  Reference r;
  const size_t a = json.find('[', json.find("\"next_ids\""));
  for (absl::string_view s :
       absl::StrSplit(json.substr(a + 1, json.find(']', a) - a - 1), ',')) {
    r.ids.push_back(std::stoi(std::string(s)));
  }
  // printed_text is a JSON string: unescape \n, \" and \\ (all it uses).
  size_t p = json.find('"', json.find(':', json.find("\"printed_text\""))) + 1;
  for (; json[p] != '"'; ++p) {
    if (json[p] == '\\') {
      ++p;
      r.text += json[p] == 'n' ? '\n' : json[p];
    } else {
      r.text += json[p];
    }
  }
  return r;
}

GenerateRequest Greedy(const std::string& prompt, int max_tokens) {
  GenerateRequest req;
  req.set_prompt(prompt);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_sampling()->set_max_tokens(max_tokens);
  return req;
}

GenerateRequest FromBos(int max_tokens) {
  GenerateRequest req = Greedy("", max_tokens);
  req.add_prompt_token_ids(1);
  req.set_return_token_ids(true);
  return req;
}

// Streams a request to the end; returns the status and collects text.
grpc::Status StreamAll(v1::Inference::Stub* stub, const GenerateRequest& req,
                       std::string* text,
                       GenerateStreamResponse* last = nullptr) {
  grpc::ClientContext ctx;
  auto reader = stub->GenerateStream(&ctx, req);
  GenerateStreamResponse msg;
  while (reader->Read(&msg)) {
    *text += msg.text();
    if (last && !msg.finish_reason().empty()) *last = msg;
  }
  return reader->Finish();
}

v1::ModelStats Stats(const std::shared_ptr<grpc::Channel>& ch) {
  grpc::ClientContext ctx;
  v1::GetStatsResponse resp;
  EXPECT_TRUE(v1::Admin::NewStub(ch)
                  ->GetStats(&ctx, v1::GetStatsRequest(), &resp)
                  .ok());
  return resp.models_size() > 0 ? resp.models(0) : v1::ModelStats();
}

// Polls (bounded) until no KV block is referenced by a request.
bool WaitForBlocksFreed(const std::shared_ptr<grpc::Channel>& ch) {
  for (int i = 0; i < 500; ++i) {
    v1::ModelStats s = Stats(ch);
    if (s.kv_blocks_used() == 0 && s.running() == 0 && s.queue_depth() == 0)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class LumendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // An fp32 KV cache: stories260K's weights are fp32, whose matrices run
    // another kernel above a measured M, so a batched row can differ from
    // its solo run in the last bits; an fp16 cache can round that into a
    // flipped token (structured_output_test.cc says more).
    daemon_ = new DaemonProcess({"--model=" + Stories(), "--ctx-size=512",
                                 "--kv-cache-mb=64", "--threads=2",
                                 "--kv-cache-type=f32"});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(daemon_->ok()) << daemon_->Log();
    stub_ = v1::Inference::NewStub(daemon_->Channel());
  }
  static DaemonProcess* daemon_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};
DaemonProcess* LumendTest::daemon_ = nullptr;

TEST_F(LumendTest, GreedyFromBosReturnsTheReference) {
  const Reference ref = LoadReference();
  grpc::ClientContext ctx;
  GenerateResponse resp;
  ASSERT_TRUE(stub_->Generate(&ctx, FromBos(200), &resp).ok());
  EXPECT_EQ(
      std::vector<int32_t>(resp.token_ids().begin(), resp.token_ids().end()),
      ref.ids);
  EXPECT_EQ(resp.text(), ref.text);
  EXPECT_EQ(resp.finish_reason(), "length");
  EXPECT_EQ(resp.usage().prompt_tokens(), 1u);
  EXPECT_EQ(resp.usage().completion_tokens(), 200u);
  EXPECT_GT(resp.timings().total_seconds(), 0);
  // Streaming gives the same text.
  std::string streamed;
  GenerateStreamResponse last;
  ASSERT_TRUE(StreamAll(stub_.get(), FromBos(200), &streamed, &last).ok());
  EXPECT_EQ(streamed, ref.text);
  EXPECT_EQ(last.finish_reason(), "length");
  EXPECT_EQ(last.usage().completion_tokens(), 200u);
}

TEST_F(LumendTest, SixteenConcurrentStreamsMatchTheirSoloRuns) {
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 16; ++i) {
    GenerateRequest r =
        Greedy(absl::StrCat("Once upon a time, ", i % 2 ? "a girl" : "a boy",
                            " named ", std::string(1, 'A' + i), " saw"),
               48 + i);
    if (i % 4 == 3) {  // some sample with a seed: deterministic per request
      r.mutable_sampling()->set_temperature(0.9f);
      r.mutable_sampling()->set_seed(100 + i);
      r.mutable_sampling()->set_top_p(0.9f);
    }
    reqs.push_back(r);
  }
  std::vector<std::string> alone(16), together(16);
  for (int i = 0; i < 16; ++i)
    ASSERT_TRUE(StreamAll(stub_.get(), reqs[i], &alone[i]).ok());
  std::vector<std::thread> threads;
  std::vector<grpc::Status> status(16);
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back(
        [&, i] { status[i] = StreamAll(stub_.get(), reqs[i], &together[i]); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 16; ++i) {
    EXPECT_TRUE(status[i].ok()) << status[i].error_message();
    EXPECT_EQ(together[i], alone[i]) << "request " << i;
    EXPECT_FALSE(alone[i].empty());
  }
}

// Cancellation: PipelineTest.CancelStopsGeneration.

TEST_F(LumendTest, ExpiredDeadlineFreesItsBlocks) {
  GenerateRequest req = FromBos(500);
  req.mutable_sampling()->set_ignore_eos(true);
  req.mutable_sampling()->set_temperature(1.0f);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(20));
  GenerateResponse resp;
  // 500 tokens take far longer than 20 ms here.
  EXPECT_EQ(stub_->Generate(&ctx, req, &resp).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(WaitForBlocksFreed(daemon_->Channel()));
}

struct BadCase {
  std::string name;
  std::function<void(GenerateRequest*)> mutate;
  grpc::StatusCode code;
  std::string message;
};

TEST_F(LumendTest, BadParametersAreRejectedWithoutDisturbingOthers) {
  const Reference ref = LoadReference();
  // A concurrent stream that must come out exactly right.
  std::string text;
  grpc::Status stream_status;
  std::thread background(
      [&] { stream_status = StreamAll(stub_.get(), FromBos(200), &text); });

  std::string long_prompt;
  for (int i = 0; i < 600; ++i) long_prompt += "dog ";
  const std::vector<BadCase> cases = {
      {"temperature",
       [](GenerateRequest* r) { r->mutable_sampling()->set_temperature(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "sampling.temperature"},
      {"top_p zero",
       [](GenerateRequest* r) { r->mutable_sampling()->set_top_p(0); },
       grpc::StatusCode::INVALID_ARGUMENT, "sampling.top_p must be in (0, 1]"},
      {"top_p above one",
       [](GenerateRequest* r) { r->mutable_sampling()->set_top_p(1.5f); },
       grpc::StatusCode::INVALID_ARGUMENT, "sampling.top_p"},
      {"max_tokens zero",
       [](GenerateRequest* r) { r->mutable_sampling()->set_max_tokens(0); },
       grpc::StatusCode::INVALID_ARGUMENT, "sampling.max_tokens"},
      {"unknown model", [](GenerateRequest* r) { r->set_model("nope"); },
       grpc::StatusCode::NOT_FOUND, "model 'nope' not found"},
      {"empty prompt", [](GenerateRequest* r) { r->clear_prompt(); },
       grpc::StatusCode::INVALID_ARGUMENT, "prompt is empty"},
      {"prompt too long",
       [&](GenerateRequest* r) { r->set_prompt(long_prompt); },
       grpc::StatusCode::INVALID_ARGUMENT, "longer than the context of 512"},
      {"unknown adapter", [](GenerateRequest* r) { r->set_adapter("legal"); },
       grpc::StatusCode::NOT_FOUND, "adapter 'legal'"},
      {"logprobs",
       [](GenerateRequest* r) { r->mutable_sampling()->set_logprobs(50); },
       grpc::StatusCode::INVALID_ARGUMENT, "sampling.logprobs"},
      {"unknown role",
       [](GenerateRequest* r) {
         r->clear_prompt();
         auto* m = r->add_messages();
         m->set_role("narrator");
         m->set_content("hi");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "messages[0].role"},
  };
  for (const BadCase& c : cases) {
    GenerateRequest req = Greedy("Once", 8);
    c.mutate(&req);
    grpc::ClientContext ctx;
    GenerateResponse resp;
    grpc::Status st = stub_->Generate(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), c.code) << c.name << ": " << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr(c.message)) << c.name;
    // The streaming RPC gives the same answer.
    std::string ignored;
    grpc::Status ss = StreamAll(stub_.get(), req, &ignored);
    EXPECT_EQ(ss.error_code(), c.code) << c.name;
  }
  background.join();
  EXPECT_TRUE(stream_status.ok());
  EXPECT_EQ(text, ref.text);
}

TEST_F(LumendTest, TokenizeDetokenizeModelsHealthAndStats) {
  grpc::ClientContext c1;
  v1::TokenizeRequest tr;
  tr.set_text("Once upon a time");
  tr.set_add_special(true);
  v1::TokenizeResponse tresp;
  ASSERT_TRUE(stub_->Tokenize(&c1, tr, &tresp).ok());
  EXPECT_EQ(
      std::vector<int32_t>(tresp.token_ids().begin(), tresp.token_ids().end()),
      (std::vector<int32_t>{1, 403, 407, 261, 378}));
  grpc::ClientContext c2;
  v1::DetokenizeRequest dr;
  for (int i = 1; i < tresp.token_ids_size(); ++i)
    dr.add_token_ids(tresp.token_ids(i));
  v1::DetokenizeResponse dresp;
  ASSERT_TRUE(stub_->Detokenize(&c2, dr, &dresp).ok());
  EXPECT_EQ(dresp.text(), "Once upon a time");
  grpc::ClientContext c3;
  dr.add_token_ids(9999);
  EXPECT_EQ(stub_->Detokenize(&c3, dr, &dresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext c4;
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub_->ListModels(&c4, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).name(), "stories260K");
  EXPECT_EQ(models.models(0).parameters(), 292800u);
  EXPECT_EQ(models.models(0).context_length(), 512u);
  grpc::ClientContext c5;
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(grpc::health::v1::Health::NewStub(daemon_->Channel())
                  ->Check(&c5, grpc::health::v1::HealthCheckRequest(), &health)
                  .ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  // Stats after some work (each test may run in a fresh daemon).
  grpc::ClientContext c6;
  GenerateResponse r6;
  ASSERT_TRUE(stub_->Generate(&c6, Greedy("Once", 4), &r6).ok());
  const v1::ModelStats s = Stats(daemon_->Channel());
  EXPECT_GT(s.kv_blocks_total(), 0u);
  EXPECT_GT(s.steps(), 0u);
  EXPECT_GT(s.mean_step_tokens(), 0);
}

TEST_F(LumendTest, RepeatedPromptReusesCachedPrefix) {
  // Words no other test uses, so the first request finds nothing cached.
  std::string prompt =
      "Zed the purple yak hummed quietly near seven tall brass lamps while "
      "eleven sleepy owls counted crisp golden leaves under a wide bridge.";
  grpc::ClientContext c1, c2;
  GenerateResponse a, b;
  ASSERT_TRUE(stub_->Generate(&c1, Greedy(prompt, 4), &a).ok());
  ASSERT_TRUE(stub_->Generate(&c2, Greedy(prompt, 4), &b).ok());
  EXPECT_EQ(a.usage().cached_prompt_tokens(), 0u);
  EXPECT_EQ(b.usage().cached_prompt_tokens(),
            (b.usage().prompt_tokens() - 1) / 16 * 16);
  EXPECT_GE(b.usage().cached_prompt_tokens(), 16u);
  EXPECT_EQ(a.text(), b.text());
}

TEST_F(LumendTest, PythonClientCallsGenerateAndGenerateStream) {
  // Debian's python3 (python3-grpcio); another python3 on PATH may lack it.
  auto r = testing::RunCommand(absl::StrCat(
      "/usr/bin/python3 ", LUMEN_SOURCE_DIR,
      "/tests/server/python_client_test.py ", daemon_->address(), " ",
      LUMEN_SOURCE_DIR, "/proto ", testing::TestDataPath("")));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("3 passed, 0 failed"));
}

TEST(LumendQueueTest, FullQueueGivesResourceExhausted) {
  DaemonProcess d({"--model=" + Stories(), "--max-running=1", "--max-queue=1",
                   "--kv-cache-mb=64", "--ctx-size=16384"});
  ASSERT_TRUE(d.ok()) << d.Log();
  auto stub = v1::Inference::NewStub(d.Channel());
  // Seconds of stories260K: a runs until cancelled below, however slowly
  // this thread is scheduled.
  GenerateRequest long_req = FromBos(16000);
  long_req.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext ca, cb;
  auto a = stub->GenerateStream(&ca, long_req);
  GenerateStreamResponse msg;
  ASSERT_TRUE(a->Read(&msg));                    // a is running
  auto b = stub->GenerateStream(&cb, long_req);  // b waits
  // Bounded wait until b is queued.
  for (int i = 0; i < 6000 && Stats(d.Channel()).queue_depth() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(Stats(d.Channel()).queue_depth(), 1u);
  grpc::ClientContext cc;
  GenerateResponse resp;
  grpc::Status st = stub->Generate(&cc, Greedy("Once", 4), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(st.error_message(), HasSubstr("queue is full"));
  ca.TryCancel();
  cb.TryCancel();
  while (a->Read(&msg)) {
  }
  while (b->Read(&msg)) {
  }
  a->Finish();
  b->Finish();
  EXPECT_TRUE(WaitForBlocksFreed(d.Channel()));
}

TEST(LumendShutdownTest, SigtermLetsTheStreamFinishAndExitsZero) {
  DaemonProcess d({"--model=" + Stories(), "--kv-cache-mb=64",
                   "--ctx-size=16384", "--shutdown-grace=60"});
  ASSERT_TRUE(d.ok()) << d.Log();
  auto stub = v1::Inference::NewStub(d.Channel());
  // Seconds of stories260K, so the stream is still in flight while the
  // drain begins, however slowly this thread is scheduled.
  GenerateRequest req = FromBos(4000);
  req.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext ctx;
  auto reader = stub->GenerateStream(&ctx, req);
  GenerateStreamResponse msg, last;
  ASSERT_TRUE(reader->Read(&msg));
  d.Signal(SIGTERM);
  // New work is refused while draining (the server is still up: the stream
  // is in flight). Bounded wait for the drain to begin.
  grpc::Status refused;
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    grpc::ClientContext c;
    GenerateResponse r;
    refused = stub->Generate(&c, Greedy("Once", 2), &r);
    if (!refused.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE)
      << refused.error_message();
  while (reader->Read(&msg)) {
    if (!msg.finish_reason().empty()) last = msg;
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.finish_reason(), "length");
  EXPECT_EQ(last.usage().completion_tokens(), 4000u);
  EXPECT_EQ(d.Wait(), 0) << d.Log();
  EXPECT_THAT(d.Log(), HasSubstr("received SIGTERM"));
}

}  // namespace
}  // namespace lumen
