// `lumen bench [--api grpc|http] --addr A --concurrency 1,4,16,64 --requests N
// --prompt-tokens P --max-tokens T [--warmup N] [--json]`: a bounded load run
// against lumend, over gRPC (GenerateStream) or the OpenAI-compatible HTTP API
// (streamed /v1/completions), the same workload either way. Per concurrency:
// requests/s, output tokens/s, TTFT p50/p90/p99, time per output token
// p50/p99 and errors by code. --warmup N runs N unmeasured requests first
// (default 0: the first level shows a fresh daemon cold).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/json_writer.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "tools/lumen/bench_http.h"
#include "tools/lumen/client_common.h"
#include "tools/lumen/commands.h"

namespace lumen::tools {

namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

struct RunResult {
  int concurrency;
  int requests = 0;
  double seconds = 0;
  int64_t output_tokens = 0;
  std::vector<double> ttft, tpot;
  std::map<std::string, int> errors;
  int resent = 0;  // HTTP requests sent again on a new connection
};

// One streamed request over gRPC.
BenchStream GrpcStream(lumen::v1::Inference::Stub* stub,
                       const ClientFlags& client,
                       const lumen::v1::GenerateRequest& req) {
  auto ctx = client.Context();
  auto reader = stub->GenerateStream(ctx.get(), req);
  lumen::v1::GenerateStreamResponse msg;
  BenchStream out;
  while (reader->Read(&msg)) {
    if (!out.first_text && !msg.text().empty()) out.first_text = Clock::now();
    if (!msg.finish_reason().empty())
      out.completion_tokens = msg.usage().completion_tokens();
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) out.error = StatusCodeName(st.error_code());
  return out;
}

}  // namespace

int ClientBench(const Args& args) {
  ClientFlags client;
  // Empty: the chosen API's default address.
  client.addr.clear();
  std::string api = "grpc";
  std::string concurrency = "1,4,16", model;
  int64_t requests = 64, prompt_tokens = 128, max_tokens = 64, warmup = 0;
  double max_seconds = 300;
  bool json = false;
  FlagSet flags(
      "lumen bench [--api grpc|http] [--addr A] --concurrency 1,4,16,64 "
      "--requests N --prompt-tokens P --max-tokens T [--warmup N] [--json]\n"
      "  --addr defaults to 127.0.0.1:50051 (grpc) or 127.0.0.1:8080 (http)");
  client.Register(&flags);
  flags.String("api", &api,
               "grpc (GenerateStream) or http (streamed /v1/completions)");
  flags.String("model", &model, "model name");
  flags.String("concurrency", &concurrency,
               "comma-separated concurrent streams");
  flags.Int("requests", &requests, "requests per concurrency level");
  flags.Int("prompt-tokens", &prompt_tokens, "prompt length in tokens");
  flags.Int("max-tokens", &max_tokens,
            "tokens generated per request (EOS ignored)");
  flags.Double("max-seconds", &max_seconds, "stop a level after this long");
  flags.Int("warmup", &warmup,
            "requests run (at the first concurrency, not measured) before "
            "the levels; 0 shows a fresh daemon's cold behaviour");
  flags.Bool("json", &json, "print one JSON object");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  if (api != "grpc" && api != "http")
    return Fail("--api must be grpc or http", 2);
  const bool http = api == "http";
  if (client.addr.empty())
    client.addr = http ? "127.0.0.1:8080" : "127.0.0.1:50051";
  std::vector<int> levels;
  for (absl::string_view c :
       absl::StrSplit(concurrency, ',', absl::SkipEmpty())) {
    int v;
    if (!absl::SimpleAtoi(c, &v) || v <= 0 || v > 256)
      return Fail("bad --concurrency", 2);
    levels.push_back(v);
  }
  if (levels.empty()) return Fail("bad --concurrency", 2);
  if (warmup < 0 || requests <= 0 || max_tokens <= 0 || prompt_tokens <= 0)
    return Fail("--warmup >= 0; --requests, --max-tokens, --prompt-tokens > 0",
                2);
  auto channel = client.Channel();
  auto stub = lumen::v1::Inference::NewStub(channel);

  // A prompt of about `prompt_tokens` tokens: words, trimmed with Tokenize
  // (over HTTP: the usage of a 1-token completion).
  auto count_tokens = [&](const std::string& text) -> absl::StatusOr<int64_t> {
    if (http) {
      return HttpBenchClient(client.addr, client.api_key)
          .CountPromptTokens(model, text);
    }
    lumen::v1::TokenizeRequest tr;
    tr.set_model(model);
    tr.set_text(text);
    tr.set_add_special(true);
    lumen::v1::TokenizeResponse resp;
    auto ctx = client.Context();
    grpc::Status st = stub->Tokenize(ctx.get(), tr, &resp);
    if (!st.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                          st.error_message());
    }
    return resp.token_ids_size();
  };
  std::string prompt;
  {
    static const char* kWords[] = {"the",  "quick", "brown", "fox",   "jumps",
                                   "over", "lazy",  "dog",   "and",   "runs",
                                   "far",  "away",  "into",  "forest"};
    for (int i = 0; i < prompt_tokens; ++i)
      absl::StrAppend(&prompt, i ? " " : "", kWords[i % 14]);
    for (int iter = 0; iter < 4; ++iter) {
      absl::StatusOr<int64_t> have = count_tokens(prompt);
      if (!have.ok()) {
        return Fail(absl::StrCat("cannot count the prompt's tokens: ",
                                 have.status().ToString()));
      }
      if (*have <= prompt_tokens) break;
      prompt.resize(prompt.size() * prompt_tokens / *have);
    }
  }

  // `count` requests from `level` client threads; `tag` makes each prompt
  // distinct across levels, and `nonce` across invocations (a second bench
  // against the same daemon must not find its prompts in the prefix cache).
  const uint32_t nonce = std::random_device()();
  auto run_level = [&](int level, int64_t count, int64_t tag) {
    RunResult r;
    r.concurrency = level;
    std::mutex mu;
    std::atomic<int> next{0};
    const auto start = Clock::now();
    const auto stop_at = start + std::chrono::milliseconds(
                                     static_cast<int64_t>(max_seconds * 1000));
    std::vector<std::thread> workers;
    for (int w = 0; w < level; ++w) {
      workers.emplace_back([&] {
        // Each client thread keeps its own HTTP connection alive.
        std::optional<HttpBenchClient> http_client;
        if (http) http_client.emplace(client.addr, client.api_key);
        int index;
        while ((index = next.fetch_add(1)) < count && Clock::now() < stop_at) {
          // A distinct first word per request: no request reuses another's
          // prompt from the prefix cache, so every prompt is really computed.
          const std::string text =
              absl::StrCat(nonce, " ", tag * 100000 + index, " ", prompt);
          const auto t0 = Clock::now();
          BenchStream s;
          if (http) {
            s = http_client->Stream(model, text, max_tokens);
          } else {
            lumen::v1::GenerateRequest req;
            req.set_model(model);
            req.set_prompt(text);
            req.mutable_sampling()->set_max_tokens(
                static_cast<uint32_t>(max_tokens));
            req.mutable_sampling()->set_temperature(0.0f);
            req.mutable_sampling()->set_ignore_eos(true);
            s = GrpcStream(stub.get(), client, req);
          }
          const auto t1 = Clock::now();
          std::lock_guard<std::mutex> lock(mu);
          r.resent += s.resent;
          if (!s.error.empty()) {
            r.errors[s.error]++;
            continue;
          }
          ++r.requests;
          r.output_tokens += s.completion_tokens;
          if (s.first_text) {
            r.ttft.push_back(
                std::chrono::duration<double>(*s.first_text - t0).count());
            if (s.completion_tokens > 1) {
              r.tpot.push_back(
                  std::chrono::duration<double>(t1 - *s.first_text).count() /
                  (s.completion_tokens - 1));
            }
          }
        }
      });
    }
    for (auto& t : workers) t.join();
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return r;
  };
  if (warmup > 0) run_level(levels[0], warmup, 0);
  std::vector<RunResult> results;
  for (int level : levels) results.push_back(run_level(level, requests, level));

  if (json) {
    JsonWriter w;
    w.BeginObject()
        .Key("api")
        .String(api)
        .Key("prompt_tokens")
        .Int(prompt_tokens)
        .Key("max_tokens")
        .Int(max_tokens)
        .Key("warmup")
        .Int(warmup);
    w.Key("levels").BeginArray();
    for (const RunResult& r : results) {
      w.BeginObject()
          .Key("concurrency")
          .Int(r.concurrency)
          .Key("requests")
          .Int(r.requests)
          .Key("requests_per_s")
          .Double(r.requests / r.seconds)
          .Key("output_tokens_per_s")
          .Double(r.output_tokens / r.seconds)
          .Key("ttft_p50_s")
          .Double(Percentile(r.ttft, 0.5))
          .Key("ttft_p90_s")
          .Double(Percentile(r.ttft, 0.9))
          .Key("ttft_p99_s")
          .Double(Percentile(r.ttft, 0.99))
          .Key("tpot_p50_s")
          .Double(Percentile(r.tpot, 0.5))
          .Key("tpot_p99_s")
          .Double(Percentile(r.tpot, 0.99));
      w.Key("errors").BeginObject();
      for (const auto& [code, n] : r.errors) w.Key(code).Int(n);
      w.EndObject();
      w.Key("resent").Int(r.resent);
      w.EndObject();
    }
    w.EndArray().EndObject();
    std::printf("%s\n", w.str().c_str());
    return 0;
  }
  std::printf(
      "%s on %s: prompt %lld tokens, %lld output tokens per request, "
      "%lld warm-up requests\n",
      http ? "HTTP (/v1/completions)" : "gRPC (GenerateStream)",
      client.addr.c_str(), (long long)prompt_tokens, (long long)max_tokens,
      (long long)warmup);
  std::printf("%11s %8s %8s %10s %9s %9s %9s %9s %9s  %s\n", "concurrency",
              "requests", "req/s", "out tok/s", "TTFT p50", "TTFT p90",
              "TTFT p99", "TPOT p50", "TPOT p99", "errors");
  for (const RunResult& r : results) {
    std::string errors;
    for (const auto& [code, n] : r.errors)
      absl::StrAppend(&errors, code, "=", n, " ");
    // Not errors: requests the server closed a kept-alive connection under
    // before taking them, sent again (HttpBenchClient::Stream).
    if (r.resent > 0) absl::StrAppend(&errors, "(resent ", r.resent, ") ");
    std::printf(
        "%11d %8d %8.2f %10.1f %7.1fms %7.1fms %7.1fms %7.2fms %7.2fms  %s\n",
        r.concurrency, r.requests, r.requests / r.seconds,
        r.output_tokens / r.seconds, 1e3 * Percentile(r.ttft, 0.5),
        1e3 * Percentile(r.ttft, 0.9), 1e3 * Percentile(r.ttft, 0.99),
        1e3 * Percentile(r.tpot, 0.5), 1e3 * Percentile(r.tpot, 0.99),
        errors.empty() ? "none" : errors.c_str());
  }
  return 0;
}

}  // namespace lumen::tools
