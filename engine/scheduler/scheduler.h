#pragma once
// Scheduler: decides each step which tokens of which requests run (vLLM v1's
// shape). There is no prefill phase and no decode phase: every request has
// num_computed_tokens, and one token budget per step covers both. Running
// requests come first (one token each when decoding, or the rest of a
// chunked prompt), then waiting requests are admitted in arrival order with
// prompt chunks, reusing cached prefix blocks. A step that decodes may
// keep its prompt tokens within a smaller prefill budget (Sarathi's
// stall-free batching; off unless set): a long prompt then lengthens the
// running streams' step by a bounded amount instead of by a whole chunk.
// When KV blocks run out the
// newest running request is preempted: its blocks are freed and it is
// recomputed later. "No room" is a value, not an error. Engine thread only.

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "engine/scheduler/block_pool.h"
#include "engine/scheduler/prefill_budget.h"

namespace lumen::engine {

enum class RequestState { kWaiting, kRunning, kFinished };

// The scheduler's view of a request. The caller owns it and keeps it alive
// until Finish().
struct SchedRequest {
  uint64_t id = 0;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int32_t num_prompt_tokens = 0;
  int32_t num_computed_tokens = 0;  // tokens whose K/V are in the cache
  int32_t num_cached_tokens = 0;  // prompt tokens reused from the prefix cache
  std::vector<int32_t> blocks;    // block table
  int32_t num_registered_blocks =
      0;  // full blocks published to the prefix cache
  std::vector<BlockHash> block_hashes;  // of the registered blocks
  // Parent hash of the first block: PrefixRoot(salt) keeps the prefixes of
  // different tenants and adapters apart.
  BlockHash prefix_root = PrefixRoot("");
  RequestState state = RequestState::kWaiting;
  int32_t num_preemptions = 0;
};

struct ScheduledRequest {
  SchedRequest* request;
  int32_t num_tokens;  // tokens[num_computed_tokens, +num_tokens) run this step
  bool sample;         // the step computes its last token: sample the next one
};

struct SchedulerOutput {
  std::vector<ScheduledRequest> scheduled;  // running order
  std::vector<SchedRequest*> preempted;     // sent back to waiting this step
  int32_t num_tokens = 0;
  int32_t num_decoding = 0;  // scheduled entries past their prompt (1 token)
};

struct SchedulerConfig {
  int32_t max_batch_tokens = 512;
  int32_t max_running = 64;
  int32_t block_size = 16;
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, BlockPool* pool)
      : config_(config), pool_(pool) {}

  // Queues a new request at the tail of the waiting queue.
  void Add(SchedRequest* request);
  // Plans one step. Empty when nothing can run.
  SchedulerOutput Schedule();
  // After the model ran `out`: advances num_computed_tokens, appends the
  // sampled tokens (one per entry with sample = true, in order, skipping
  // requests finished since Schedule) and
  // publishes newly filled blocks to the prefix cache.
  void Update(const SchedulerOutput& out, std::span<const int32_t> sampled);
  // Removes a request wherever it is and frees its blocks at once.
  void Finish(SchedRequest* request);
  // Bounds the prompt tokens of a step that also decodes to
  // budget->Tokens(its decoding streams); null (the default) bounds nothing
  // beyond max_batch_tokens. The budget must outlive the scheduler.
  void SetPrefillBudget(const PrefillBudget* budget) {
    prefill_budget_ = budget;
  }

  bool HasWork() const { return !running_.empty() || !waiting_.empty(); }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int64_t num_preemptions() const { return num_preemptions_; }
  int64_t prefix_hit_tokens() const { return prefix_hit_tokens_; }
  const SchedulerConfig& config() const { return config_; }

 private:
  // Grows the block table to hold `num_tokens` tokens; false if no room.
  bool AllocateSlots(SchedRequest* r, int32_t num_tokens);
  void Preempt(SchedRequest* r);
  // Reuses cached full blocks of the request's prefix (at least one token
  // is always left to compute).
  void AcquireCachedPrefix(SchedRequest* r);

  SchedulerConfig config_;
  BlockPool* pool_;
  std::deque<SchedRequest*> waiting_;
  std::vector<SchedRequest*>
      running_;  // admission order; the tail is preempted first
  int64_t num_preemptions_ = 0;
  int64_t prefix_hit_tokens_ = 0;
  const PrefillBudget* prefill_budget_ = nullptr;
};

}  // namespace lumen::engine
