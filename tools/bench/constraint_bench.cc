// Cost of constrained decoding per generated token: the allowed-token mask
// (cold: first visit of a matcher state, a token-trie walk; warm: a cached
// copy) and advancing by the sampled token, for a nested JSON Schema over
// the llama SPM vocabulary (32k) and the largest BPE vocabulary in the test
// data (deepseek-llm, 102k). Tokens come from random logits sampled at
// temperature 1.0 under the mask; only mask and advance are timed, in thread
// CPU time.
//   constraint_bench [--vocab-dir DIR] [--requests N] [--seed S]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "base/flags.h"
#include "engine/constrained/constraint.h"
#include "engine/constrained/constraint_cache.h"
#include "engine/gguf/gguf_file.h"
#include "engine/sampler.h"
#include "engine/tokenizer/tokenizer.h"

namespace {

using lumen::engine::constrained::CompiledConstraint;
using lumen::engine::constrained::ConstraintCache;
using lumen::engine::constrained::ConstraintKind;
using lumen::engine::constrained::ConstraintState;

// CPU time of this thread: the machine may be shared, and a preempted
// thread's wall time would count other processes' work.
struct Clock {
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<Clock, duration>;
  static time_point now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return time_point(duration(int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec));
  }
};

constexpr char kSchema[] = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer", "minimum": 0},
    "name": {"type": "string", "maxLength": 24},
    "email": {"type": "string",
              "pattern": "^[a-z]{1,12}@[a-z]{1,10}\\.(com|org)$"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 10},
             "maxItems": 4},
    "address": {
      "type": "object",
      "properties": {
        "street": {"type": "string", "maxLength": 24},
        "city": {"type": "string", "maxLength": 16},
        "geo": {"type": "object",
                "properties": {
                  "lat": {"type": "number", "minimum": -90, "maximum": 90},
                  "lon": {"type": "number", "minimum": -180, "maximum": 180}},
                "required": ["lat", "lon"]}
      },
      "required": ["street", "city", "geo"]
    },
    "orders": {
      "type": "array", "maxItems": 3,
      "items": {
        "type": "object",
        "properties": {
          "sku": {"type": "string", "maxLength": 12},
          "qty": {"type": "integer", "minimum": 1, "maximum": 99},
          "status": {"enum": ["new", "paid", "shipped"]}
        },
        "required": ["sku", "qty", "status"]
      }
    }
  },
  "required": ["id", "name", "address", "orders"]
})";

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct Samples {
  std::vector<double> ms;
  void Add(double v) { ms.push_back(v); }
  double Mean() const {
    double s = 0;
    for (double v : ms) s += v;
    return ms.empty() ? 0 : s / ms.size();
  }
  double Quantile(double q) {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))];
  }
  double Sum() const { return Mean() * ms.size(); }
};

struct RunResult {
  int tokens = 0;
  double mask_ms = 0;    // all masks of the request
  double accept_ms = 0;  // all AcceptToken calls
};

// One request: random logits, masked sampling at temperature 1.0.
RunResult RunRequest(const CompiledConstraint& c, int32_t n_vocab,
                     uint64_t seed, Samples* cold, Samples* warm) {
  auto state = c.NewState();
  if (!state.ok()) {
    std::fprintf(stderr, "%s\n", std::string(state.status().message()).c_str());
    std::exit(1);
  }
  lumen::engine::SamplingParams params;
  params.temperature = 1.0f;
  params.seed = seed;
  lumen::engine::SamplerState sampler_state(params);
  lumen::engine::Sampler sampler;
  std::vector<float> logits(n_vocab);  // [n_vocab]
  std::vector<uint32_t> mask((n_vocab + 31) / 32);
  std::mt19937_64 rng(seed);
  RunResult r;
  for (int step = 0; step < 2000; ++step) {
    const int64_t walks_before = c.stats().mask_walks;
    const auto t0 = Clock::now();
    if (!state->FillAllowedMask(mask).ok()) std::exit(1);
    const double mask_ms = Ms(Clock::now() - t0);
    (c.stats().mask_walks > walks_before ? cold : warm)->Add(mask_ms);
    r.mask_ms += mask_ms;
    for (float& v : logits) v = static_cast<float>(rng() >> 40) * 0x1p-21f;
    auto token = sampler.SampleMasked(logits, mask, &sampler_state);
    if (!token.ok()) std::exit(1);
    const auto t1 = Clock::now();
    if (!state->AcceptToken(*token).ok()) std::exit(1);
    r.accept_ms += Ms(Clock::now() - t1);
    ++r.tokens;
    if (state->IsEnded()) break;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string vocab_dir = "../shared/testdata/vocab";
  int64_t requests = 20;
  int64_t seed = 1;
  lumen::FlagSet flags(
      "constraint_bench [--vocab-dir DIR] [--requests N] [--seed S]");
  flags.String("vocab-dir", &vocab_dir, "directory of ggml-vocab-*.gguf files");
  flags.Int("requests", &requests, "requests per vocabulary (same schema)");
  flags.Int("seed", &seed, "seed of the first request");
  if (auto s = flags.Parse(argc, argv); !s.ok() || flags.help_requested()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(),
                 flags.Help().c_str());
    return s.ok() ? 0 : 2;
  }
  // What reading the clock itself costs (included in every figure below).
  Samples clock_cost;
  for (int i = 0; i < 1000; ++i) {
    const auto t = Clock::now();
    clock_cost.Add(Ms(Clock::now() - t));
  }
  std::printf(
      "target: mask cost < 0.4 ms per token (10%% of a ~4 ms decode step of "
      "the 110M synth at 1 sequence); times are thread CPU time, clock read "
      "%.4f ms\n",
      clock_cost.Quantile(0.5));
  for (const char* name : {"llama-spm", "deepseek-llm"}) {
    auto file = lumen::engine::GgufFile::Open(vocab_dir + "/ggml-vocab-" +
                                              name + ".gguf");
    if (!file.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(file.status().message()).c_str());
      return 1;
    }
    auto tokenizer = lumen::engine::Tokenizer::FromGguf(**file);
    if (!tokenizer.ok()) return 1;
    const int32_t n_vocab = (*tokenizer)->vocab().size();

    auto t0 = Clock::now();
    ConstraintCache cache(**tokenizer);
    const double trie_ms = Ms(Clock::now() - t0);
    t0 = Clock::now();
    auto c = cache.Get({ConstraintKind::kJsonSchema, kSchema});
    const double compile_ms = Ms(Clock::now() - t0);
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", std::string(c.status().message()).c_str());
      return 1;
    }
    std::printf(
        "\n%s: %d tokens, trie of %d nodes built in %.1f ms; schema compiled "
        "in %.1f ms (start state's mask included)\n",
        name, n_vocab, cache.trie()->num_nodes(), trie_ms, compile_ms);

    Samples cold, warm, first_cold, first_warm;
    RunResult first;
    double total_mask_ms = 0, total_accept_ms = 0;
    int total_tokens = 0;
    for (int64_t i = 0; i < requests; ++i) {
      const RunResult r =
          i == 0 ? RunRequest(**c, n_vocab, seed + i, &first_cold, &first_warm)
                 : RunRequest(**c, n_vocab, seed + i, &cold, &warm);
      if (i == 0) first = r;
      total_mask_ms += r.mask_ms;
      total_accept_ms += r.accept_ms;
      total_tokens += r.tokens;
    }
    std::printf(
        "  first request (cold cache): %d tokens, mask %.3f ms/token "
        "(%zu cold walks, mean %.3f ms, p50 %.3f ms, max %.3f ms; %zu warm, "
        "mean %.4f ms)\n",
        first.tokens, first.mask_ms / first.tokens, first_cold.ms.size(),
        first_cold.Mean(), first_cold.Quantile(0.5), first_cold.Quantile(1.0),
        first_warm.ms.size(), first_warm.Mean());
    if (requests > 1) {
      const double later_mask = total_mask_ms - first.mask_ms;
      const int later_tokens = total_tokens - first.tokens;
      std::printf(
          "  next %lld requests: %d tokens, mask %.4f ms/token (%zu cold "
          "walks, mean %.3f ms; warm p50 %.4f ms, p99 %.4f ms)\n",
          static_cast<long long>(requests - 1), later_tokens,
          later_mask / later_tokens, cold.ms.size(), cold.Mean(),
          warm.Quantile(0.5), warm.Quantile(0.99));
    }
    const auto stats = (*c)->stats();
    std::printf(
        "  all %lld requests: mask %.4f ms/token, advance %.4f ms/token; "
        "matcher: %d states, %d cached masks, %.1f MiB\n",
        static_cast<long long>(requests), total_mask_ms / total_tokens,
        total_accept_ms / total_tokens, stats.num_states, stats.cached_masks,
        stats.memory_bytes / 1048576.0);

    // Worst single walk: inside an unbounded string nearly every token
    // stays allowed, so the whole trie is visited. Each round compiles a
    // fresh constraint (another description) to start cold.
    Samples walk, copy;
    int allowed = 0;
    const int32_t quote = (*tokenizer)->vocab().Find("\"");
    std::vector<uint32_t> mask((n_vocab + 31) / 32);
    for (int round = 0; round < 20; ++round) {
      auto any_string = cache.Get({ConstraintKind::kJsonSchema,
                                   "{\"type\":\"string\",\"description\":\"" +
                                       std::to_string(round) + "\"}"});
      if (!any_string.ok()) return 1;
      auto s = (*any_string)->NewState();
      if (!s.ok() || quote < 0 || !s->AcceptToken(quote).ok()) return 1;
      t0 = Clock::now();
      if (!s->FillAllowedMask(mask).ok()) return 1;
      walk.Add(Ms(Clock::now() - t0));
      t0 = Clock::now();
      if (!s->FillAllowedMask(mask).ok()) return 1;
      copy.Add(Ms(Clock::now() - t0));
      allowed = 0;
      for (uint32_t w : mask) allowed += __builtin_popcount(w);
    }
    std::printf(
        "  inside an unbounded string (%d tokens allowed): cold walk p50 "
        "%.3f ms (min %.3f), warm p50 %.4f ms\n",
        allowed, walk.Quantile(0.5), walk.Quantile(0.0), copy.Quantile(0.5));
  }
  return 0;
}
