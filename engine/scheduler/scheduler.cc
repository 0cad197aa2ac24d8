#include "engine/scheduler/scheduler.h"

#include <algorithm>

namespace lumen::engine {

void Scheduler::Add(SchedRequest* r) {
  r->state = RequestState::kWaiting;
  waiting_.push_back(r);
}

bool Scheduler::AllocateSlots(SchedRequest* r, int32_t num_tokens) {
  const int32_t bs = config_.block_size;
  const int32_t need =
      (num_tokens + bs - 1) / bs - static_cast<int32_t>(r->blocks.size());
  if (need <= 0) return true;
  auto blocks = pool_->Allocate(need);
  if (!blocks) return false;
  r->blocks.insert(r->blocks.end(), blocks->begin(), blocks->end());
  return true;
}

void Scheduler::Preempt(SchedRequest* r) {
  pool_->Free(r->blocks);
  r->blocks.clear();
  r->block_hashes.clear();
  r->num_registered_blocks = 0;
  r->num_computed_tokens = 0;
  r->state = RequestState::kWaiting;
  ++r->num_preemptions;
  ++num_preemptions_;
  waiting_.push_front(r);
}

void Scheduler::AcquireCachedPrefix(SchedRequest* r) {
  const int32_t bs = config_.block_size;
  const int32_t max_blocks = (static_cast<int32_t>(r->tokens.size()) - 1) / bs;
  BlockHash parent = r->prefix_root;
  for (int32_t i = 0; i < max_blocks; ++i) {
    const BlockHash h =
        HashBlock(parent, std::span(r->tokens).subspan(i * bs, bs));
    auto block = pool_->Lookup(h);
    if (!block) break;
    pool_->Acquire(*block);
    r->blocks.push_back(*block);
    r->block_hashes.push_back(h);
    parent = h;
  }
  r->num_registered_blocks = static_cast<int32_t>(r->blocks.size());
  r->num_computed_tokens = r->num_registered_blocks * bs;
}

SchedulerOutput Scheduler::Schedule() {
  SchedulerOutput out;
  int32_t budget = config_.max_batch_tokens;
  // Prompt tokens this step may take: bounded by the decoding prefill
  // budget when it decodes (one token of a running request that is past its
  // prompt). Leaving room for every decoder is only a guard: admission order
  // already puts a partly computed prompt after the decoders.
  int32_t decoding = 0;
  for (const SchedRequest* r : running_) {
    decoding +=
        static_cast<int32_t>(r->tokens.size()) - r->num_computed_tokens == 1;
  }
  int32_t prefill_left = budget;
  if (decoding > 0) {
    const int32_t bound =
        prefill_budget_ ? prefill_budget_->Tokens(decoding) : budget;
    prefill_left = std::max(0, std::min(bound, budget - decoding));
  }

  // 1. Running requests, oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    SchedRequest* r = running_[i];
    const int32_t remaining =
        static_cast<int32_t>(r->tokens.size()) - r->num_computed_tokens;
    const bool prefill = remaining > 1;
    const int32_t n = std::min<int32_t>(
        prefill ? std::min(budget, prefill_left) : budget, remaining);
    if (n <= 0) {
      ++i;
      continue;
    }
    bool self_preempted = false;
    while (!AllocateSlots(r, r->num_computed_tokens + n)) {
      SchedRequest* victim = running_.back();
      running_.pop_back();
      Preempt(victim);
      out.preempted.push_back(victim);
      if (victim == r) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;
    const bool sample =
        r->num_computed_tokens + n == static_cast<int32_t>(r->tokens.size());
    out.scheduled.push_back({r, n, sample});
    out.num_decoding += !prefill;
    budget -= n;
    if (prefill) prefill_left -= n;
    ++i;
  }

  // 2. Waiting requests in arrival order, unless this step had to preempt.
  while (out.preempted.empty() && std::min(budget, prefill_left) > 0 &&
         !waiting_.empty() &&
         static_cast<int32_t>(running_.size()) < config_.max_running) {
    SchedRequest* r = waiting_.front();
    const bool fresh = r->num_computed_tokens == 0 && r->blocks.empty();
    if (fresh) AcquireCachedPrefix(r);
    const int32_t n = std::min<int32_t>(
        std::min(budget, prefill_left),
        static_cast<int32_t>(r->tokens.size()) - r->num_computed_tokens);
    if (!AllocateSlots(r, r->num_computed_tokens + n)) {
      if (fresh) {  // give the prefix back; try again next step
        pool_->Free(r->blocks);
        r->blocks.clear();
        r->block_hashes.clear();
        r->num_registered_blocks = 0;
        r->num_computed_tokens = 0;
      }
      break;
    }
    waiting_.pop_front();
    if (fresh && r->num_preemptions == 0) {
      r->num_cached_tokens = r->num_computed_tokens;
      prefix_hit_tokens_ += r->num_computed_tokens;
    }
    r->state = RequestState::kRunning;
    running_.push_back(r);
    const bool sample =
        r->num_computed_tokens + n == static_cast<int32_t>(r->tokens.size());
    out.scheduled.push_back({r, n, sample});
    budget -= n;
    prefill_left -= n;
  }
  out.num_tokens = config_.max_batch_tokens - budget;
  return out;
}

void Scheduler::Update(const SchedulerOutput& out,
                       std::span<const int32_t> sampled) {
  const int32_t bs = config_.block_size;
  size_t next = 0;
  for (const ScheduledRequest& s : out.scheduled) {
    SchedRequest* r = s.request;
    // Finished during the step (its sampling failed): no token, no blocks.
    if (r->state == RequestState::kFinished) continue;
    r->num_computed_tokens += s.num_tokens;
    if (s.sample && next < sampled.size()) r->tokens.push_back(sampled[next++]);
    // Publish blocks whose every token is now computed.
    const int32_t full = r->num_computed_tokens / bs;
    while (r->num_registered_blocks < full) {
      const int32_t i = r->num_registered_blocks;
      const BlockHash& parent =
          i == 0 ? r->prefix_root : r->block_hashes[i - 1];
      const BlockHash h =
          HashBlock(parent, std::span(r->tokens).subspan(i * bs, bs));
      pool_->Register(r->blocks[i], h);
      r->block_hashes.push_back(h);
      ++r->num_registered_blocks;
    }
  }
}

void Scheduler::Finish(SchedRequest* r) {
  if (r->state == RequestState::kFinished) return;
  auto it = std::find(running_.begin(), running_.end(), r);
  if (it != running_.end()) running_.erase(it);
  auto wit = std::find(waiting_.begin(), waiting_.end(), r);
  if (wit != waiting_.end()) waiting_.erase(wit);
  pool_->Free(r->blocks);
  r->blocks.clear();
  r->state = RequestState::kFinished;
}

}  // namespace lumen::engine
