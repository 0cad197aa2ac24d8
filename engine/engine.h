#pragma once
// Engine: one model served by one engine thread. RPC threads call Submit and
// Abort (thread-safe inbox); the engine thread owns the scheduler, block
// pool, KV cache, model, sampler and its OpenMP team, and runs the step loop:
//
//   drain inbox -> schedule -> one ragged forward -> sample -> post events
//
// It only schedules, runs the model and samples: the tokens it samples go to
// the engine's OutputProcessor (its own thread), which detokenizes, applies
// stop strings, writes each request's RequestStream and logs.
//
// Compute ownership: the engine thread sets its own OpenMP team
// (EngineOptions::num_threads; omp_set_num_threads applies to the calling
// thread only) and the model's scratch is sized for that team.

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
#include "engine/engine_observer.h"
#include "engine/generation.h"
#include "engine/kv_cache.h"
#include "engine/model/transformer.h"
#include "engine/output_processor.h"
#include "engine/sampler.h"
#include "engine/scheduler/block_pool.h"
#include "engine/scheduler/scheduler.h"
#include "engine/tokenizer/tokenizer.h"

namespace lumen::engine {

struct EngineOptions {
  int32_t max_batch_tokens = 512;
  int32_t max_running = 64;
  // Prompt tokens a step that also decodes may take (Scheduler); 0: no
  // bound beyond max_batch_tokens.
  int32_t decode_prefill_tokens = 0;
  // Within that bound, such a step may last at most (1 + max_decode_stall)
  // times a measured decode-only step (PrefillBudget); 0: no time bound.
  // Off here (library users and tests get step shapes that do not depend
  // on timing); lumend's --max-decode-stall defaults to 1.
  double max_decode_stall = 0;
  int32_t max_queue = 256;  // waiting requests before RESOURCE_EXHAUSTED
  int64_t kv_cache_bytes = int64_t{1} << 30;
  int32_t block_size = 16;  // tokens per KV block, 1..256
  KvElement kv_element = KvElement::kF16;
  // OpenMP threads of the engine thread's kernels; at most the model's
  // TransformerOptions::num_threads (its scratch is sized for that).
  int32_t num_threads = 1;
};

class Engine {
 public:
  // Takes the model; the tokenizer (and observer, if any) must outlive the
  // engine. Sizes the KV cache from options.kv_cache_bytes (InvalidArgument
  // when it cannot hold one full context) and starts the engine and output
  // threads.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(
      std::string name, std::unique_ptr<Transformer> model,
      const Tokenizer* tokenizer, const EngineOptions& options,
      EngineObserver* observer = nullptr);
  ~Engine();  // Stop()s

  // Queues a request. InvalidArgument for an empty prompt or one that does
  // not leave room for a token in the context, RESOURCE_EXHAUSTED when the
  // queue is full, UNAVAILABLE when draining. On OK the engine owns the
  // request and will finish `stream` exactly once. Any thread.
  absl::Status Submit(uint64_t id, GenerateParams params,
                      std::shared_ptr<RequestStream> stream);
  // Cancels a request; its blocks are freed at the next step. Any thread.
  void Abort(uint64_t id);
  // Stops accepting requests; in-flight ones continue. Any thread.
  void BeginDrain();
  // Requests not yet finished (queued or running). Any thread.
  int64_t InFlight() const;
  // Cancels everything in flight, joins the engine thread, then lets the
  // output stage deliver what is left and joins it.
  void Stop();

  EngineStats Stats() const;
  const std::string& name() const { return name_; }
  const Transformer& model() const { return *model_; }
  const EngineOptions& options() const { return options_; }
  int64_t context_size() const { return model_->max_context(); }

 private:
  struct Active;
  Engine() = default;
  void Loop();
  // Takes what RPC threads queued; false when stopping.
  // wait: block until there is something; else return at once.
  bool DrainInbox(std::vector<std::unique_ptr<Active>>* added,
                  std::vector<uint64_t>* aborts, bool wait);
  // Runs one scheduled step: forward, sample, token-level ends.
  void RunStep();
  // Handles the token sampled for `a`.
  void OnToken(Active* a, int32_t token, float logprob, int32_t top_begin,
               int32_t top_count);
  // Feeds `token` to a lazy constraint's trigger; once the trigger has
  // appeared, the constraint takes over (fed up to this token). True when
  // it did.
  bool ArmLazyConstraint(Active* a, int32_t token);
  // Ends a request in the engine (frees its blocks) and reports the end.
  void EndRequest(Active* a, EngineFinish finish, absl::Status error);
  SequenceEvent& NewEvent(Active* a);
  void PublishStats();

  std::string name_;
  std::unique_ptr<Transformer> model_;
  const Tokenizer* tokenizer_ = nullptr;
  EngineOptions options_;
  EngineObserver* observer_ = nullptr;
  std::unique_ptr<OutputProcessor> output_;

  // Engine thread only.
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<BlockPool> pool_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<PrefillBudget> prefill_budget_;
  Sampler sampler_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Active>> active_;
  std::vector<float> logits_;              // [max_running, n_vocab]
  std::vector<int32_t> batch_tokens_;      // [max_batch_tokens]
  std::vector<BatchSequence> batch_seqs_;  // [max_running]
  // What one step sampled, row by row.
  struct SampledRow {
    Active* active;
    float logprob;
    int32_t top_begin, top_count;  // alternatives in events_->top
  };
  std::vector<int32_t> sampled_;            // [max_running] tokens
  std::vector<SampledRow> sampled_rows_;    // [max_running]
  std::vector<TokenLogprob> alternatives_;  // [logprobs] scratch of Sample
  std::vector<uint32_t> mask_;              // [(n_vocab + 31) / 32]
  std::vector<int64_t> expert_tokens_;      // MoE: [layers * experts]
  std::unique_ptr<StepEvents> events_;      // this step's, for the output
  EngineStats counters_;

  // Shared with RPC threads.
  mutable absl::Mutex mu_;
  absl::CondVar work_;
  std::deque<std::unique_ptr<Active>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> aborts_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  EngineStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace lumen::engine
