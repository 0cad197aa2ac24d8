// LoRA adapters and MoE models through a real lumend: --lora at start,
// Admin Load/Unload/ListAdapters at run time, requests with different
// adapters (and none) streaming concurrently, unload during traffic, errors
// with exact status codes, per-adapter and per-expert metrics.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lumen/v1/admin.grpc.pb.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "tests/server/daemon_process.h"
#include "tests/test_support.h"
#include "tools/synth/synth_model.h"

namespace lumen {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::string Stories() {
  return testing::TestDataPath("models/stories260K.gguf");
}

std::string MakeAdapter(const std::string& dir, const std::string& name,
                        int rank, const std::string& targets, int seed) {
  tools::SynthLoraOptions o;
  o.base = Stories();
  o.rank = rank;
  o.alpha = 2.0 * rank;
  o.targets = targets;
  o.seed = seed;
  const std::string path = dir + "/" + name + ".gguf";
  EXPECT_TRUE(tools::SynthesizeLora(o, path).ok());
  return path;
}

v1::GenerateRequest Request(const std::string& prompt,
                            const std::string& adapter, int max_tokens) {
  v1::GenerateRequest req;
  req.set_prompt(prompt);
  req.set_adapter(adapter);
  req.set_return_token_ids(true);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_sampling()->set_max_tokens(max_tokens);
  req.mutable_sampling()->set_ignore_eos(true);
  return req;
}

// Streams to the end; returns the status, fills the generated ids.
grpc::Status Stream(v1::Inference::Stub* stub, const v1::GenerateRequest& req,
                    std::vector<int32_t>* ids) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub->GenerateStream(&ctx, req);
  v1::GenerateStreamResponse msg;
  while (reader->Read(&msg)) {
    for (int32_t t : msg.token_ids()) ids->push_back(t);
  }
  return reader->Finish();
}

class AdapterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::MakeTempDir());
    MakeAdapter(*dir_, "attn", 4, "q,k,v,o", 1);
    MakeAdapter(*dir_, "ffn", 8, "gate,up,down", 2);
    MakeAdapter(*dir_, "all", 16, "q,k,v,o,gate,up,down", 3);
    daemon_ = new testing::DaemonProcess(
        {"--model=" + Stories(), "--ctx-size=4096", "--kv-cache-mb=64",
         // fp32 weights, so an fp32 cache (lumend_test.cc says why).
         "--kv-cache-type=f32", "--threads=2", "--metrics-listen=127.0.0.1:0",
         "--lora=attn=" + *dir_ + "/attn.gguf",
         "--lora=ffn=" + *dir_ + "/ffn.gguf"});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_TRUE(daemon_->ok()) << daemon_->Log();
    stub_ = v1::Inference::NewStub(daemon_->Channel());
    admin_ = v1::Admin::NewStub(daemon_->Channel());
  }
  grpc::Status Load(const std::string& name, const std::string& path,
                    v1::LoadAdapterResponse* resp = nullptr) {
    v1::LoadAdapterRequest req;
    req.set_name(name);
    req.set_path(path);
    v1::LoadAdapterResponse ignored;
    grpc::ClientContext ctx;
    return admin_->LoadAdapter(&ctx, req, resp ? resp : &ignored);
  }
  grpc::Status Unload(const std::string& name,
                      v1::UnloadAdapterResponse* resp = nullptr) {
    v1::UnloadAdapterRequest req;
    req.set_name(name);
    v1::UnloadAdapterResponse ignored;
    grpc::ClientContext ctx;
    return admin_->UnloadAdapter(&ctx, req, resp ? resp : &ignored);
  }
  std::vector<std::string> Listed() {
    grpc::ClientContext ctx;
    v1::ListAdaptersResponse resp;
    EXPECT_TRUE(
        admin_->ListAdapters(&ctx, v1::ListAdaptersRequest(), &resp).ok());
    std::vector<std::string> names;
    for (const auto& a : resp.adapters()) names.push_back(a.name());
    return names;
  }

  static std::string* dir_;
  static testing::DaemonProcess* daemon_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};
std::string* AdapterTest::dir_ = nullptr;
testing::DaemonProcess* AdapterTest::daemon_ = nullptr;

TEST_F(AdapterTest, StartupAdaptersAreListedWithTheirShape) {
  grpc::ClientContext ctx;
  v1::ListAdaptersResponse resp;
  ASSERT_TRUE(
      admin_->ListAdapters(&ctx, v1::ListAdaptersRequest(), &resp).ok());
  std::map<std::string, v1::AdapterInfo> by_name;
  for (const auto& a : resp.adapters()) by_name[a.name()] = a;
  ASSERT_TRUE(by_name.contains("attn"));
  ASSERT_TRUE(by_name.contains("ffn"));
  EXPECT_EQ(by_name["attn"].rank(), 4u);
  EXPECT_EQ(by_name["attn"].targets(), "q,k,v,o");
  EXPECT_EQ(by_name["attn"].model(), "stories260K");
  // stories260K: 5 layers, width 64, kv dim 32: rank 4 x (in + out) per matrix.
  EXPECT_EQ(by_name["attn"].parameters(),
            5u * 4 * ((64 + 64) + 2 * (64 + 32) + (64 + 64)));
  EXPECT_EQ(by_name["ffn"].targets(), "gate,up,down");
  EXPECT_FLOAT_EQ(by_name["ffn"].alpha(), 16.0f);
}

TEST_F(AdapterTest, UnknownAdapterIsNotFound) {
  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  grpc::Status s = stub_->Generate(&ctx, Request("Lily", "nope", 4), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("adapter 'nope' not found"));
}

TEST_F(AdapterTest, MixedAdaptersStreamTogetherAsTheyDoAlone) {
  ASSERT_TRUE(Load("all", *dir_ + "/all.gguf").ok());
  const std::vector<std::string> adapters = {"", "attn", "ffn", "all"};
  // The second prompt spans several KV blocks: its prefix is cached after
  // the first run, and must only be reused by requests of the same adapter.
  const std::vector<std::string> prompts = {
      "Once upon a time",
      "Lily and Tom went to the park. They saw a big red ball under a tree "
      "and wanted to play with it, but a dog came and took it away."};
  std::map<std::pair<std::string, std::string>, std::vector<int32_t>> alone;
  for (const auto& a : adapters) {
    for (const auto& p : prompts) {
      ASSERT_TRUE(Stream(stub_.get(), Request(p, a, 48), &alone[{a, p}]).ok());
      EXPECT_EQ((alone[{a, p}].size()), 48u);
    }
  }
  for (const auto& a : {"attn", "ffn", "all"}) {
    EXPECT_NE((alone[{a, prompts[0]}]), (alone[{"", prompts[0]}]))
        << "adapter " << a << " does not change the output";
  }
  // All eight at once, twice over, so they share engine steps.
  std::vector<std::future<void>> calls;
  for (int round = 0; round < 2; ++round) {
    for (const auto& a : adapters) {
      for (const auto& p : prompts) {
        calls.push_back(std::async(std::launch::async, [&, a, p] {
          std::vector<int32_t> ids;
          grpc::Status s = Stream(stub_.get(), Request(p, a, 48), &ids);
          EXPECT_TRUE(s.ok()) << s.error_message();
          EXPECT_EQ(ids, (alone[{a, p}])) << "adapter '" << a << "' " << p;
        }));
      }
    }
  }
  for (auto& c : calls) c.get();
  ASSERT_TRUE(Unload("all").ok());
}

TEST_F(AdapterTest, PrefixCacheIsNotSharedAcrossAdapters) {
  const std::string prompt =
      "Ben had a little boat. Every day he took it to the pond and watched it "
      "float on the water while the ducks swam around it and quacked.";
  auto cached = [&](const std::string& adapter) {
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    EXPECT_TRUE(stub_->Generate(&ctx, Request(prompt, adapter, 2), &resp).ok());
    EXPECT_GT(resp.usage().prompt_tokens(), 32u);
    return resp.usage().cached_prompt_tokens();
  };
  EXPECT_EQ(cached(""), 0u);
  EXPECT_EQ(cached("attn"), 0u);  // the base model's blocks are not reused
  EXPECT_GT(cached("attn"), 0u);  // its own are
  EXPECT_EQ(cached("ffn"), 0u);
  EXPECT_GT(cached(""), 0u);
}

TEST_F(AdapterTest, UnloadDuringTrafficWaitsAndThenRefuses) {
  // Long enough (seconds) that the streams still run when the unload
  // arrives however slowly this thread is scheduled: waited_seconds > 0.
  constexpr int kTokens = 2000;
  ASSERT_TRUE(Load("temp", *dir_ + "/all.gguf").ok());
  std::atomic<int> started{0};
  std::vector<std::future<grpc::Status>> streams;
  std::vector<std::vector<int32_t>> ids(3);
  for (int i = 0; i < 3; ++i) {
    streams.push_back(std::async(std::launch::async, [&, i] {
      grpc::ClientContext ctx;
      auto reader = stub_->GenerateStream(
          &ctx, Request(absl::StrCat("Tom ", i), "temp", kTokens));
      v1::GenerateStreamResponse msg;
      bool first = true;
      while (reader->Read(&msg)) {
        if (first) ++started, first = false;
        for (int32_t t : msg.token_ids()) ids[i].push_back(t);
      }
      return reader->Finish();
    }));
  }
  while (started.load() < 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  v1::UnloadAdapterResponse unload;
  ASSERT_TRUE(Unload("temp", &unload).ok());
  // Unload returned only after the engine finished every request holding
  // the adapter (client-side arrival times of the two RPCs are not ordered,
  // the server's state is).
  {
    grpc::ClientContext sctx;
    v1::GetStatsResponse stats;
    ASSERT_TRUE(v1::Admin::NewStub(daemon_->Channel())
                    ->GetStats(&sctx, v1::GetStatsRequest(), &stats)
                    .ok());
    ASSERT_EQ(stats.models_size(), 1);
    EXPECT_EQ(stats.models(0).running(), 0u) << "unload returned early";
    EXPECT_EQ(stats.models(0).queue_depth(), 0u);
  }
  // New requests are refused at once, even before the unload returned.
  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  EXPECT_EQ(
      stub_->Generate(&ctx, Request("Tom", "temp", 4), &resp).error_code(),
      grpc::StatusCode::NOT_FOUND);
  for (int i = 0; i < 3; ++i) {
    grpc::Status s = streams[i].get();
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(ids[i].size(), static_cast<size_t>(kTokens)) << "stream " << i;
  }
  EXPECT_GT(unload.waited_seconds(), 0.0);
  const auto names = Listed();
  EXPECT_EQ(std::count(names.begin(), names.end(), "temp"), 0);
  EXPECT_EQ(Unload("temp").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AdapterTest, LoadErrorsHaveExactCodes) {
  EXPECT_EQ(Load("attn", *dir_ + "/all.gguf").error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  grpc::Status s = Load("base", Stories());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("general.type must be"));
  EXPECT_EQ(Load("gone", *dir_ + "/missing.gguf").error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Load("bad name!", *dir_ + "/all.gguf").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AdapterTest, MetricsCountRequestsPerLoadedAdapter) {
  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  ASSERT_TRUE(stub_->Generate(&ctx, Request("Ben", "ffn", 8), &resp).ok());
  ASSERT_TRUE(Load("short", *dir_ + "/attn.gguf").ok());
  grpc::ClientContext ctx2;
  ASSERT_TRUE(stub_->Generate(&ctx2, Request("Ben", "short", 8), &resp).ok());
  std::string body = testing::HttpGet(daemon_->metrics_port(), "/metrics");
  EXPECT_THAT(body, HasSubstr("lumen_adapter_requests_total{adapter=\"ffn\","
                              "model=\"stories260K\"}"));
  EXPECT_THAT(
      body, HasSubstr("lumen_adapter_generation_tokens_total{adapter=\"short\","
                      "model=\"stories260K\"} 8"));
  ASSERT_TRUE(Unload("short").ok());
  body = testing::HttpGet(daemon_->metrics_port(), "/metrics");
  EXPECT_THAT(body, HasSubstr("adapter=\"ffn\""));
  EXPECT_THAT(body, ::testing::Not(HasSubstr("adapter=\"short\"")));
}

TEST(MoeServingTest, ExpertLoadInStatsAndMetrics) {
  tools::SynthOptions o;
  o.arch = "mixtral";
  o.dim = 64;
  o.layers = 2;
  o.heads = 4;
  o.kv_heads = 2;
  o.ffn = 64;
  o.experts = 4;
  o.experts_used = 2;
  o.ctx = 256;
  o.vocab_from = testing::TestDataPath("vocab/ggml-vocab-llama-spm.gguf");
  const std::string path = testing::MakeTempDir() + "/moe.gguf";
  ASSERT_TRUE(tools::Synthesize(o, path).ok());
  testing::DaemonProcess d({"--model=moe=" + path, "--kv-cache-mb=16",
                            "--metrics-listen=127.0.0.1:0"});
  ASSERT_TRUE(d.ok()) << d.Log();
  auto stub = v1::Inference::NewStub(d.Channel());
  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  ASSERT_TRUE(stub->Generate(&ctx, Request("Hello world", "", 10), &resp).ok());
  const int64_t tokens =
      resp.usage().prompt_tokens() + 10 - 1;  // last token is not fed back

  grpc::ClientContext sctx;
  v1::GetStatsResponse stats;
  ASSERT_TRUE(v1::Admin::NewStub(d.Channel())
                  ->GetStats(&sctx, v1::GetStatsRequest(), &stats)
                  .ok());
  ASSERT_EQ(stats.models(0).moe_layers_size(), 2);
  for (const auto& layer : stats.models(0).moe_layers()) {
    ASSERT_EQ(layer.expert_tokens_size(), 4);
    uint64_t sum = 0;
    for (uint64_t n : layer.expert_tokens()) sum += n;
    EXPECT_EQ(sum, static_cast<uint64_t>(2 * tokens))
        << "layer " << layer.layer();
    EXPECT_GE(layer.imbalance(), 1.0);
    EXPECT_LE(layer.imbalance(), 4.0);
  }
  const std::string body = testing::HttpGet(d.metrics_port(), "/metrics");
  EXPECT_THAT(body, HasSubstr("lumen_moe_expert_tokens_total{expert=\"3\","
                              "layer=\"1\",model=\"moe\"}"));
}

}  // namespace
}  // namespace lumen
