#pragma once
// What a generation request asks for, what the engine thread reports per step
// (token ids, log-probabilities, token-level ends) and what the output stage
// streams to the front end (text, with stop strings applied).
//
//   front end --GenerateParams--> Engine (engine thread: schedule, forward,
//   sample) --StepEvents--> OutputProcessor (output thread: detokenize, stop
//   strings, usage, logs) --GenerationDelta--> RequestStream --> front end

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "engine/sampler.h"

namespace lumen::engine {

class LoraAdapter;
namespace constrained {
class CompiledConstraint;
}

using SteadyTime = std::chrono::steady_clock::time_point;

inline double SecondsBetween(SteadyTime a, SteadyTime b) {
  return std::chrono::duration<double>(b - a).count();
}

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
  // Output must match this constraint (JSON schema, regex, grammar); null:
  // free generation.
  std::shared_ptr<const constrained::CompiledConstraint> constraint;
  // Non-empty: the constraint is lazy. The output is free until it contains
  // this text (anywhere, or only at its start after whitespace); from the
  // text's first byte on it must match the constraint (tool_choice "auto":
  // a call, once begun, follows the tools' schemas). An occurrence the
  // constraint refuses (its token ran on into text the constraint does not
  // allow) leaves the output free, and later occurrences are tried.
  std::string constraint_trigger;
  bool constraint_trigger_at_start = false;
  // Requests with different salts never share prefix-cache blocks: the
  // front end puts the tenant here (unless --share-prefix-cache).
  std::string cache_salt;
  std::string api = "grpc";  // front end, for logs and metric labels
  // Called once by the output stage when the request ends, with its usage
  // (quota accounting); may be empty.
  std::function<void(const struct Usage&)> on_finished;
  SteadyTime arrival = std::chrono::steady_clock::now();
};

struct LogprobEntry {
  int32_t token_id;
  std::string token;  // the token's bytes (may be a partial UTF-8 sequence)
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

// How the engine ended a sequence (stop strings are the output stage's).
enum class EngineFinish : uint8_t {
  kNone,       // still running
  kStop,       // end-of-generation token, or the constraint is complete
  kLength,     // max_tokens or the context is full
  kCancelled,  // aborted, deadline, or failed (see SequenceEvent::error)
};

// One sequence's result of one engine step: a sampled token and/or its end.
struct SequenceEvent {
  uint64_t id = 0;
  int32_t token = -1;  // -1: no token (the sequence ended without one)
  float logprob = 0;   // of `token`, when the request asked for logprobs
  int32_t top_begin = 0, top_count = 0;  // its alternatives in StepEvents::top
  EngineFinish finish = EngineFinish::kNone;
  absl::Status error;  // with kCancelled: why (deadline, failed step, ...)
  int32_t num_cached_tokens = 0;  // prompt tokens reused from the prefix cache
  std::optional<SteadyTime> first_scheduled;
};

// Everything the engine thread reports after one step. Buffers are reused:
// the output stage hands them back emptied.
struct StepEvents {
  std::vector<SequenceEvent> events;  // [sequences that sampled or ended]
  std::vector<TokenLogprob> top;      // [sum of top_count]
  SteadyTime time;                    // when the step finished
  void Clear() {
    events.clear();
    top.clear();
  }
};

// A delta of a request's output as the front end sees it; several pending
// deltas merge into one.
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

// The output queue of one request: the output stage pushes, the front end
// takes everything pending at once (so a slow reader gets bigger messages
// and never blocks the engine). Thread-safe.
class RequestStream {
 public:
  // Called (from the output thread) after each push; must not block.
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
