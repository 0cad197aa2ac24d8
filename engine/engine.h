#pragma once
// Engine: one model served by one engine thread. RPC threads call Submit and
// Abort (thread-safe inbox); the engine thread owns the scheduler, block
// pool, KV cache, model and sampler and runs the step loop:
//
//   drain inbox -> schedule -> one ragged forward -> sample -> publish
//
// Output goes to each request's RequestStream.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/generation.h"
#include "engine/kv_cache.h"
#include "engine/model/transformer.h"
#include "engine/sampler.h"
#include "engine/scheduler/block_pool.h"
#include "engine/scheduler/scheduler.h"
#include "engine/stop_matcher.h"
#include "engine/tokenizer/tokenizer.h"

namespace lumen::engine {

struct EngineOptions {
  int32_t max_batch_tokens = 512;
  int32_t max_running = 64;
  int32_t max_queue = 256;  // waiting requests before RESOURCE_EXHAUSTED
  int64_t kv_cache_bytes = int64_t{1} << 30;
  int32_t block_size = 16;
};

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
};

struct StepSummary {
  int32_t num_tokens;
  int32_t num_sequences;
  double seconds;          // whole step
  double forward_seconds;  // inside Transformer::Forward
  int32_t preemptions;
};

struct RequestSummary {
  uint64_t id;
  std::string model;
  std::string adapter;  // empty: the base model
  Usage usage;
  Timings timings;
  std::string finish_reason;
  absl::StatusCode code;
};

// Receives step and request events on the engine thread; must be quick.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStep(const StepSummary& step) {}
  virtual void OnRequestFinished(const RequestSummary& request) {}
  // Gauges after each step.
  virtual void OnGauges(const std::string& model, const EngineStats& stats) {}
  // MoE models, after each step: tokens routed to each expert since load,
  // [layer * n_experts + expert].
  virtual void OnExpertTokens(std::span<const int64_t> cumulative,
                              int64_t n_experts) {}
};

class Engine {
 public:
  // Takes the model; the tokenizer must outlive the engine. Sizes the KV
  // cache from options.kv_cache_bytes (InvalidArgument when it cannot hold
  // one full context) and starts the engine thread.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(
      std::string name, std::unique_ptr<Transformer> model,
      const Tokenizer* tokenizer, const EngineOptions& options,
      EngineObserver* observer = nullptr);
  ~Engine();  // Stop()s

  // Queues a request. RESOURCE_EXHAUSTED when the queue is full, UNAVAILABLE
  // when draining. On OK the engine owns the request and will finish
  // `stream` exactly once. Any thread.
  absl::Status Submit(uint64_t id, GenerateParams params,
                      std::shared_ptr<RequestStream> stream);
  // Cancels a request; its blocks are freed at the next step. Any thread.
  void Abort(uint64_t id);
  // Stops accepting requests; in-flight ones continue. Any thread.
  void BeginDrain();
  // Requests not yet finished (queued or running). Any thread.
  int64_t InFlight() const;
  // Cancels everything in flight and joins the engine thread.
  void Stop();

  EngineStats Stats() const;
  const std::string& name() const { return name_; }
  const Transformer& model() const { return *model_; }
  int64_t context_size() const { return model_->max_context(); }

 private:
  struct Active;
  Engine() = default;
  void Loop();
  void DrainInbox(std::vector<std::unique_ptr<Active>>* added,
                  std::vector<uint64_t>* aborts);
  void FinishRequest(Active* a, std::string reason, absl::Status error);
  void EmitToken(Active* a, int32_t token, const TokenLogprob& chosen,
                 std::vector<TokenLogprob>* alternatives);
  void PublishStats();

  std::string name_;
  std::unique_ptr<Transformer> model_;
  const Tokenizer* tokenizer_ = nullptr;
  EngineOptions options_;
  EngineObserver* observer_ = nullptr;

  // Engine thread only.
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<BlockPool> pool_;
  std::unique_ptr<Scheduler> scheduler_;
  Sampler sampler_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Active>> active_;
  std::vector<float> logits_;              // [max_running, n_vocab]
  std::vector<int32_t> batch_tokens_;      // [max_batch_tokens]
  std::vector<BatchSequence> batch_seqs_;  // [max_running]
  std::vector<int32_t> sampled_;           // [max_running]
  std::vector<TokenLogprob> alternatives_;
  std::vector<TokenLogprob> chosen_;             // [sampled this step]
  std::vector<std::vector<TokenLogprob>> alts_;  // [sampled this step]
  std::vector<int64_t> expert_tokens_;           // MoE: [layers * experts]
  EngineStats counters_;

  // Shared with RPC threads.
  mutable absl::Mutex mu_;
  absl::CondVar work_;
  std::deque<std::unique_ptr<Active>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> aborts_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int32_t waiting_ ABSL_GUARDED_BY(mu_) = 0;  // inbox + scheduler waiting
  EngineStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace lumen::engine
