// Per-key quotas of the --api-keys file through a real lumend: each limit
// refuses with RESOURCE_EXHAUSTED naming it and a retry-after hint, is
// counted in lumen_quota_rejections_total and GetStats, and SIGHUP reloads
// the keys without dropping requests in flight.

#include <signal.h>

#include <chrono>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lumen/v1/admin.grpc.pb.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "tests/server/daemon_process.h"
#include "tests/test_support.h"

namespace lumen {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;

void WriteKeys(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

class QuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    WriteKeys(dir_ + "/keys.txt",
              "# key tenant role limits\n"
              "k-alpha alpha user requests_per_minute=2\n"
              "k-beta beta user concurrent_requests=1\n"
              "k-gamma gamma user max_tokens=8 max_prompt_tokens=16\n"
              "k-delta delta user tokens_per_minute=10\n"
              "k-ops ops admin\n");
    daemon_ = std::make_unique<DaemonProcess>(std::vector<std::string>{
        "--model=" + testing::TestDataPath("models/stories260K.gguf"),
        // Streams that must still run while the test makes other calls
        // are long (seconds of stories260K), so a slowly scheduled test
        // thread cannot see them end early.
        "--ctx-size=16384", "--kv-cache-mb=64",
        "--api-keys=" + dir_ + "/keys.txt", "--metrics-listen=127.0.0.1:0"});
    ASSERT_TRUE(daemon_->ok()) << daemon_->Log();
    stub_ = v1::Inference::NewStub(daemon_->Channel());
  }

  // Generate with `key`; fills the retry-after trailer when present.
  grpc::Status Generate(const std::string& key, int max_tokens,
                        const std::string& prompt = "Once upon a time",
                        std::string* retry_after = nullptr) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    v1::GenerateRequest req;
    req.set_prompt(prompt);
    req.mutable_sampling()->set_max_tokens(max_tokens);
    req.mutable_sampling()->set_ignore_eos(true);
    v1::GenerateResponse resp;
    grpc::Status s = stub_->Generate(&ctx, req, &resp);
    if (retry_after) {
      auto it = ctx.GetServerTrailingMetadata().find("retry-after");
      *retry_after = it == ctx.GetServerTrailingMetadata().end()
                         ? ""
                         : std::string(it->second.data(), it->second.size());
    }
    return s;
  }
  v1::GetStatsResponse Stats(const std::string& key) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    v1::GetStatsResponse resp;
    EXPECT_TRUE(v1::Admin::NewStub(daemon_->Channel())
                    ->GetStats(&ctx, v1::GetStatsRequest(), &resp)
                    .ok());
    return resp;
  }

  std::string dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TEST_F(QuotaTest, RequestsPerMinute) {
  EXPECT_TRUE(Generate("k-alpha", 2).ok());
  EXPECT_TRUE(Generate("k-alpha", 2).ok());
  std::string retry_after;
  grpc::Status s = Generate("k-alpha", 2, "Once upon a time", &retry_after);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("requests_per_minute=2"));
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  // Other keys are not affected.
  EXPECT_TRUE(Generate("k-ops", 2).ok());
  EXPECT_THAT(testing::HttpGet(daemon_->metrics_port(), "/metrics"),
              HasSubstr("lumen_quota_rejections_total{limit=\"requests_per_"
                        "minute\",tenant=\"alpha\"} 1"));
}

TEST_F(QuotaTest, ConcurrentRequests) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer k-beta");
  v1::GenerateRequest req;
  req.add_prompt_token_ids(1);
  req.mutable_sampling()->set_max_tokens(16000);  // ends cancelled
  req.mutable_sampling()->set_ignore_eos(true);
  auto reader = stub_->GenerateStream(&ctx, req);
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg));  // the first is in flight
  grpc::Status second = Generate("k-beta", 2);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(second.error_message(), HasSubstr("concurrent_requests=1"));
  ctx.TryCancel();
  while (reader->Read(&msg)) {
  }
  reader->Finish();
  // The slot comes back when the stream ends (bounded wait for the
  // cancellation to reach the engine).
  grpc::Status again;
  for (int i = 0; i < 500; ++i) {
    again = Generate("k-beta", 2);
    if (again.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(again.ok()) << again.error_message();
}

// Requests refused after the key's slot was taken (unknown adapter, a
// constraint that does not compile, a prompt beyond the context) give the
// slot back: with concurrent_requests=1 the next request still runs.
TEST_F(QuotaTest, RefusedRequestsReturnTheirSlot) {
  auto refused = [&](auto mutate) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer k-beta");
    v1::GenerateRequest req;
    req.set_prompt("Once upon a time");
    req.mutable_sampling()->set_max_tokens(2);
    mutate(&req);
    v1::GenerateResponse resp;
    return stub_->Generate(&ctx, req, &resp).error_code();
  };
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(refused([](v1::GenerateRequest* r) { r->set_adapter("nope"); }),
              grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(refused([](v1::GenerateRequest* r) {
                r->mutable_sampling()->set_regex("(unclosed");
              }),
              grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(refused([](v1::GenerateRequest* r) {
                std::string longer_than_context;
                for (int i = 0; i < 8000; ++i)  // > --ctx-size 16384
                  longer_than_context += "Once upon a time ";
                r->set_prompt(longer_than_context);
              }),
              grpc::StatusCode::INVALID_ARGUMENT);
    grpc::Status ok = Generate("k-beta", 2);
    EXPECT_TRUE(ok.ok()) << "round " << round << ": " << ok.error_message();
  }
}

TEST_F(QuotaTest, PerRequestCaps) {
  grpc::Status s = Generate("k-gamma", 9);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("max_tokens=8"));
  EXPECT_TRUE(Generate("k-gamma", 8).ok());
  s = Generate("k-gamma", 4,
               "Once upon a time there was a little girl who loved to play "
               "outside in the park with her dog every day");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("max_prompt_tokens=16"));
}

TEST_F(QuotaTest, TokensPerMinuteAndUsageInStats) {
  // The bucket holds 10 tokens: the first request may take 40 (charged when
  // it ends), then the key is in debt.
  EXPECT_TRUE(Generate("k-delta", 40).ok());
  grpc::Status s = Generate("k-delta", 4);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("tokens_per_minute=10"));
  // A user sees its own keys; an admin every key.
  const v1::GetStatsResponse own = Stats("k-delta");
  ASSERT_EQ(own.keys_size(), 1);
  EXPECT_EQ(own.keys(0).tenant(), "delta");
  EXPECT_EQ(own.keys(0).requests(), 1u);
  EXPECT_EQ(own.keys(0).generated_tokens(), 40u);
  EXPECT_EQ(own.keys(0).rejections(), 1u);
  EXPECT_EQ(own.keys(0).tokens_per_minute(), 10u);
  EXPECT_EQ(own.keys(0).key_fingerprint().size(), 12u);
  EXPECT_EQ(Stats("k-ops").keys_size(), 5);
}

TEST_F(QuotaTest, SighupReloadsKeysWithoutDroppingRequests) {
  // A stream in flight across the reload.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer k-beta");
  v1::GenerateRequest req;
  req.add_prompt_token_ids(1);
  req.mutable_sampling()->set_max_tokens(4000);
  req.mutable_sampling()->set_ignore_eos(true);
  auto reader = stub_->GenerateStream(&ctx, req);
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(Generate("k-new", 2).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  WriteKeys(dir_ + "/keys.txt",
            "k-beta beta user concurrent_requests=1\n"
            "k-new newcomer user\n"
            "k-ops ops admin\n");
  daemon_->Signal(SIGHUP);
  grpc::Status added;
  for (int i = 0; i < 500; ++i) {
    added = Generate("k-new", 2);
    if (added.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(added.ok()) << added.error_message();
  EXPECT_EQ(Generate("k-alpha", 2).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);  // removed
  // beta's stream still holds its slot (state kept across the reload).
  EXPECT_EQ(Generate("k-beta", 2).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  v1::GenerateStreamResponse last;
  while (reader->Read(&msg)) {
    if (!msg.finish_reason().empty()) last = msg;
  }
  const grpc::Status finished = reader->Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_EQ(last.usage().completion_tokens(), 4000u);
  EXPECT_THAT(daemon_->Log(), HasSubstr("received SIGHUP; reloaded"));
  // A malformed file keeps the keys that work.
  WriteKeys(dir_ + "/keys.txt", "broken line\n");
  daemon_->Signal(SIGHUP);
  for (int i = 0; i < 500; ++i) {
    if (daemon_->Log().find("kept the previous keys") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT(daemon_->Log(), HasSubstr("kept the previous keys"));
  EXPECT_TRUE(Generate("k-new", 2).ok());
}

}  // namespace
}  // namespace lumen
