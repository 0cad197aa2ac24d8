#pragma once
// What an engine reports to metrics and logs: counters, per-step summaries
// and finished requests.

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "engine/generation.h"

namespace lumen::engine {

// Snapshot of the engine's counters, refreshed once per step.
struct EngineStats {
  int32_t queue_depth = 0;
  int32_t running = 0;
  int32_t kv_blocks_total = 0;
  int32_t kv_blocks_free = 0;
  int32_t kv_blocks_cached = 0;
  int64_t prefix_cache_hit_tokens = 0;
  int64_t prompt_tokens = 0;
  int64_t generation_tokens = 0;
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t requests_finished = 0;
  double step_seconds_total = 0;
  double forward_seconds_total = 0;
  int64_t step_tokens_total = 0;
  // The KV arena's size, and how much of it is backed with memory so far
  // (the engine backs it while idle: KvCache::PopulateSome).
  int64_t kv_cache_bytes = 0;
  int64_t kv_cache_populated_bytes = 0;
};

struct StepSummary {
  int32_t num_tokens;
  int32_t num_sequences;
  double seconds;          // whole step
  double forward_seconds;  // inside the model's Forward
  int32_t preemptions;
};

struct RequestSummary {
  uint64_t id;
  std::string model;
  std::string adapter;  // empty: the base model
  std::string api;      // "grpc" or "http"
  Usage usage;
  Timings timings;
  std::string finish_reason;
  absl::StatusCode code;
};

// Receives engine events; implementations must be quick and thread-safe
// between the two threads that call them.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // Engine thread, after each step.
  virtual void OnStep(const StepSummary& step) {}
  // Output thread, once per request, with its final outcome.
  virtual void OnRequestFinished(const RequestSummary& request) {}
  // Engine thread, gauges after each step.
  virtual void OnGauges(const std::string& model, const EngineStats& stats) {}
  // Engine thread, MoE models, after each step: tokens routed to each expert
  // since load, [layer * n_experts + expert].
  virtual void OnExpertTokens(std::span<const int64_t> cumulative,
                              int64_t n_experts) {}
};

}  // namespace lumen::engine
