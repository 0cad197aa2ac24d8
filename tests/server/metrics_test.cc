// lumend's /metrics after a bounded burst of traffic: every metric of the
// contract (SPEC section 6, docs/metrics.md) is exported, with sane values.

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "tests/server/daemon_process.h"
#include "tests/test_support.h"

namespace lumen {
namespace {

using ::testing::HasSubstr;

using testing::HttpGet;

TEST(MetricsTest, ExportsTheContractAfterTraffic) {
  testing::DaemonProcess d(
      {"--model=" + testing::TestDataPath("models/stories260K.gguf"),
       "--metrics-listen=127.0.0.1:0", "--kv-cache-mb=64"});
  ASSERT_TRUE(d.ok()) << d.Log();
  ASSERT_GT(d.metrics_port(), 0) << d.Log();
  auto stub = v1::Inference::NewStub(d.Channel());
  for (int i = 0; i < 8; ++i) {
    v1::GenerateRequest req;
    req.set_prompt(absl::StrCat("Once upon a time ", i));
    req.mutable_sampling()->set_max_tokens(16);
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    ASSERT_TRUE(stub->Generate(&ctx, req, &resp).ok());
  }
  v1::GenerateRequest bad;
  bad.set_prompt("x");
  bad.mutable_sampling()->set_top_p(2);
  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  EXPECT_FALSE(stub->Generate(&ctx, bad, &resp).ok());

  const std::string body = HttpGet(d.metrics_port(), "/metrics");
  ASSERT_FALSE(body.empty());
  // lumen_moe_expert_tokens_total has no series (and so no lines) until an
  // MoE model runs: Prometheus clients omit empty families.
  for (const char* name : {"lumen_requests_total",
                           "lumen_request_duration_seconds_bucket",
                           "lumen_time_to_first_token_seconds_bucket",
                           "lumen_time_per_output_token_seconds_bucket",
                           "lumen_prompt_tokens_total",
                           "lumen_generation_tokens_total",
                           "lumen_prefix_cache_hit_tokens_total",
                           "lumen_queue_depth",
                           "lumen_running_sequences",
                           "lumen_kv_cache_usage_ratio",
                           "# TYPE lumen_kv_cache_bytes gauge",
                           "# TYPE lumen_kv_cache_populated_bytes gauge",
                           "lumen_step_tokens_bucket",
                           "lumen_step_duration_seconds_bucket",
                           "lumen_preemptions_total",
                           "lumen_rag_retrieval_seconds",
                           "lumen_rag_documents",
                           "lumen_build_info",
                           "process_cpu_seconds_total",
                           "process_resident_memory_bytes",
                           "process_open_fds"}) {
    EXPECT_NE(body.find(name), std::string::npos) << name;
  }
  EXPECT_THAT(
      body,
      HasSubstr("lumen_requests_total{api=\"grpc\",finish_reason=\"length\","
                "model=\"stories260K\",status=\"OK\"} 8"));
  EXPECT_THAT(body, HasSubstr("status=\"INVALID_ARGUMENT\"} 1"));
  EXPECT_THAT(
      body,
      HasSubstr("lumen_generation_tokens_total{model=\"stories260K\"} 128"));
  // TTFT buckets span 1 ms to 60 s.
  EXPECT_THAT(
      body,
      HasSubstr(
          "lumen_time_to_first_token_seconds_bucket{model=\"stories260K\","
          "le=\"0.001\"}"));
  EXPECT_THAT(body, HasSubstr("le=\"60\""));
}

// The value of the series `series` (name and labels) in a /metrics body; -1
// when absent.
double SeriesValue(const std::string& body, const std::string& series) {
  const size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::strtod(body.c_str() + at + series.size() + 2, nullptr);
}

// The idle engine backs its KV arena after start, and the gauges show it:
// populated bytes grow to the arena's size (64 MiB requested, whole blocks).
TEST(MetricsTest, KvCachePopulatedBytesReachTheArenaSize) {
  if (!testing::KernelPopulatesPages())
    GTEST_SKIP() << "the kernel cannot populate pages (MADV_POPULATE_WRITE)";
  testing::DaemonProcess d(
      {"--model=" + testing::TestDataPath("models/stories260K.gguf"),
       "--metrics-listen=127.0.0.1:0", "--kv-cache-mb=64"});
  ASSERT_TRUE(d.ok()) << d.Log();
  ASSERT_GT(d.metrics_port(), 0) << d.Log();
  const std::string total = "lumen_kv_cache_bytes{model=\"stories260K\"}";
  const std::string populated =
      "lumen_kv_cache_populated_bytes{model=\"stories260K\"}";
  double arena = -1, backed = -1;
  for (int i = 0; i < 200; ++i) {  // 20 s at most
    const std::string body = HttpGet(d.metrics_port(), "/metrics");
    arena = SeriesValue(body, total);
    backed = SeriesValue(body, populated);
    if (arena > 0 && backed == arena) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(arena, 60 << 20);
  EXPECT_LE(arena, 64 << 20);
  EXPECT_EQ(backed, arena);
}

}  // namespace
}  // namespace lumen
