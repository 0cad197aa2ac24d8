// lumend's /metrics after a bounded burst of traffic: every metric of the
// contract (SPEC section 6, docs/metrics.md) is exported, with sane values.

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
  for (const char* name :
       {"lumen_requests_total", "lumen_request_duration_seconds_bucket",
        "lumen_time_to_first_token_seconds_bucket",
        "lumen_time_per_output_token_seconds_bucket",
        "lumen_prompt_tokens_total", "lumen_generation_tokens_total",
        "lumen_prefix_cache_hit_tokens_total", "lumen_queue_depth",
        "lumen_running_sequences", "lumen_kv_cache_usage_ratio",
        "lumen_step_tokens_bucket", "lumen_step_duration_seconds_bucket",
        "lumen_preemptions_total", "lumen_rag_retrieval_seconds",
        "lumen_rag_documents", "lumen_build_info", "process_cpu_seconds_total",
        "process_resident_memory_bytes", "process_open_fds"}) {
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

}  // namespace
}  // namespace lumen
