#pragma once
// What a generation request asks for and what it streams back, shared by the
// engine thread (producer) and the RPC layer (consumer).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "engine/sampler.h"

namespace lumen::engine {

class LoraAdapter;

using SteadyTime = std::chrono::steady_clock::time_point;

struct GenerateParams {
  std::vector<int32_t> prompt_tokens;  // non-empty, shorter than the context
  SamplingParams sampling;
  int32_t max_tokens = 128;
  std::vector<std::string> stop;
  int32_t logprobs = 0;  // top alternatives per token
  bool ignore_eos = false;
  std::optional<SteadyTime> deadline;
  // LoRA adapter for this request (none: the base model). Holding it keeps
  // the adapter alive until the request ends, whatever unloads it.
  std::shared_ptr<const LoraAdapter> adapter;
  std::string adapter_name;
};

struct LogprobEntry {
  int32_t token_id;
  std::string token;
  float logprob;
  std::vector<TokenLogprob> top;
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t cached_prompt_tokens = 0;
};

struct Timings {
  double queue_seconds = 0;
  double time_to_first_token_seconds = 0;
  double total_seconds = 0;
  double time_per_output_token_seconds = 0;
};

// A delta of a request's output; several pending deltas merge into one.
struct GenerationDelta {
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<LogprobEntry> logprobs;
  bool finished = false;
  std::string finish_reason;  // "stop", "length", "stop_sequence", "cancelled"
  absl::Status error;         // non-OK: the request failed (e.g. deadline)
  Usage usage;
  Timings timings;

  void MergeFrom(GenerationDelta&& next);
};

// The output queue of one request: the engine thread pushes, the RPC side
// takes everything pending at once (so a slow reader gets bigger messages
// and never blocks the engine). Thread-safe.
class RequestStream {
 public:
  // Called (from the engine thread) after each push; must not block.
  void SetNotifier(std::function<void()> notify) ABSL_LOCKS_EXCLUDED(mu_);
  void Push(GenerationDelta delta) ABSL_LOCKS_EXCLUDED(mu_);
  // Moves all pending output into *out; false when nothing is pending.
  bool Take(GenerationDelta* out) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::optional<GenerationDelta> pending_ ABSL_GUARDED_BY(mu_);
  std::function<void()> notify_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumen::engine
