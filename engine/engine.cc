#include "engine/engine.h"

#include <omp.h>

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "engine/constrained/constraint.h"
#include "engine/constrained/constraint_trigger.h"
#include "engine/model/lora_adapter.h"

namespace lumen::engine {

namespace {

// What the idle engine thread backs of the KV arena at a time, which a
// request arriving meanwhile waits for: 8 MiB took 0.7 ms at the 11-12
// GB/s of free 2 MiB pages and 14 ms at the 0.6 GB/s of pages the VM had
// to make (tools/bench/prefault_bench.cc). Where an installment takes
// longer than kKvPopulateSlowSeconds (the kernel compacting memory for huge
// pages, say), the next ones are halved, down to one huge page, and stay
// so (the first may reach 10 MiB: installments end on 2 MiB boundaries).
constexpr int64_t kKvPopulateInstallmentBytes = int64_t{8} << 20;
constexpr int64_t kKvPopulateMinBytes = int64_t{2} << 20;
constexpr double kKvPopulateSlowSeconds = 0.005;

using Clock = std::chrono::steady_clock;

uint64_t RandomSeed() {
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937_64 rng(std::random_device{}());
  absl::MutexLock lock(&mu);
  return rng();
}
}  // namespace

// A request the engine thread owns.
struct Engine::Active {
  Active(uint64_t id, GenerateParams p)
      : id(id), params(std::move(p)), sampler_state(params.sampling) {}
  uint64_t id;
  GenerateParams params;
  SchedRequest sched;
  SamplerState sampler_state;
  std::optional<constrained::ConstraintState> constraint;
  // A lazy constraint not yet triggered.
  std::optional<constrained::ConstraintTrigger> trigger;
  int32_t completion_tokens = 0;
  std::optional<SteadyTime> first_scheduled;
  bool first_scheduled_reported = false;
  bool finished = false;
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(
    std::string name, std::unique_ptr<Transformer> model,
    const Tokenizer* tokenizer, const EngineOptions& options,
    EngineObserver* observer) {
  std::unique_ptr<Engine> e(new Engine());
  e->name_ = std::move(name);
  e->model_ = std::move(model);
  e->tokenizer_ = tokenizer;
  e->options_ = options;
  e->observer_ = observer;
  const ModelConfig& c = e->model_->config();
  if (options.max_batch_tokens > e->model_->max_batch_tokens()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_batch_tokens ", options.max_batch_tokens,
        " exceeds the model's buffers (", e->model_->max_batch_tokens(), ")"));
  }
  if (options.num_threads < 1 ||
      options.num_threads > e->model_->num_threads()) {
    return absl::InvalidArgumentError(
        absl::StrCat("engine threads ", options.num_threads, " outside 1..",
                     e->model_->num_threads(),
                     " (the model's scratch is sized for its thread count)"));
  }
  if (options.block_size < 1 || options.block_size > 256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV block size ", options.block_size, " is outside 1..256"));
  }
  // Before sizing: a head size the element cannot store is the error to
  // report, not the capacity that follows from it.
  if (absl::Status st = CheckKvElement(options.kv_element, c.head_dim);
      !st.ok()) {
    return st;
  }
  KvCacheShape shape{c.n_layers, c.n_kv_heads, c.head_dim, options.block_size,
                     0};
  shape.element = options.kv_element;
  shape.num_blocks = KvCache::BlocksForBytes(shape, options.kv_cache_bytes);
  const int64_t ctx_blocks =
      (e->model_->max_context() + options.block_size - 1) / options.block_size;
  if (shape.num_blocks < ctx_blocks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kv cache of ", options.kv_cache_bytes / (1 << 20), " MiB holds ",
        shape.num_blocks * options.block_size,
        " tokens, less than one context of ", e->model_->max_context(),
        "; raise --kv-cache-mb or lower --ctx-size"));
  }
  auto cache = KvCache::Create(shape);
  if (!cache.ok()) return cache.status();
  e->cache_ = std::move(*cache);
  e->pool_ =
      std::make_unique<BlockPool>(static_cast<int32_t>(shape.num_blocks));
  e->scheduler_ = std::make_unique<Scheduler>(
      SchedulerConfig{options.max_batch_tokens, options.max_running,
                      options.block_size},
      e->pool_.get());
  e->prefill_budget_ = std::make_unique<PrefillBudget>(PrefillBudgetOptions{
      .max_stall = options.max_decode_stall,
      .max_tokens = options.decode_prefill_tokens > 0
                        ? std::min(options.decode_prefill_tokens,
                                   options.max_batch_tokens)
                        : options.max_batch_tokens});
  e->scheduler_->SetPrefillBudget(e->prefill_budget_.get());
  e->logits_.assign(static_cast<size_t>(options.max_running) * c.n_vocab, 0.0f);
  e->batch_tokens_.reserve(options.max_batch_tokens);
  e->batch_seqs_.reserve(options.max_running);
  e->sampled_.reserve(options.max_running);
  e->sampled_rows_.reserve(options.max_running);
  e->mask_.assign((c.n_vocab + 31) / 32, 0);
  e->output_ = std::make_unique<OutputProcessor>(
      e->name_, tokenizer, observer,
      [raw = e.get()](uint64_t id) { raw->Abort(id); });
  e->PublishStats();
  e->thread_ = std::thread([raw = e.get()] { raw->Loop(); });
  return e;
}

Engine::~Engine() { Stop(); }

absl::Status Engine::Submit(uint64_t id, GenerateParams params,
                            std::shared_ptr<RequestStream> stream) {
  // The one check of the prompt against the context: one generated token
  // must fit after it.
  if (params.prompt_tokens.empty())
    return absl::InvalidArgumentError("prompt is empty");
  if (static_cast<int64_t>(params.prompt_tokens.size()) >= context_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt of ", params.prompt_tokens.size(),
                     " tokens is longer than the context of ", context_size(),
                     " tokens (--ctx-size)"));
  }
  const int32_t n_vocab = tokenizer_->vocab().size();
  for (int32_t t : params.prompt_tokens) {
    if (t < 0 || t >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt token ", t, " is outside the vocabulary of ", n_vocab));
    }
  }
  if (!params.sampling.seed) params.sampling.seed = RandomSeed();
  auto active = std::make_unique<Active>(id, std::move(params));
  GenerateParams& p = active->params;
  if (p.constraint && !p.constraint_trigger.empty()) {
    active->trigger.emplace(p.constraint_trigger,
                            p.constraint_trigger_at_start);
  } else if (p.constraint) {
    auto state = p.constraint->NewState();
    if (!state.ok()) return state.status();
    active->constraint = std::move(*state);
  }
  active->sched.id = id;
  active->sched.tokens = p.prompt_tokens;
  active->sched.num_prompt_tokens =
      static_cast<int32_t>(active->sched.tokens.size());
  // KV computed for another tenant or under another adapter must never
  // serve this request: both salt the prefix-cache hashes (SHA-256, so
  // prompts cannot be crafted to collide).
  active->sched.prefix_root = PrefixRoot(
      absl::StrCat(p.cache_salt.size(), ":", p.cache_salt, "|",
                   p.adapter ? absl::StrCat(p.adapter->id()) : std::string()));
  absl::MutexLock lock(&mu_);
  if (draining_ || stopping_)
    return absl::UnavailableError("server is shutting down");
  if (static_cast<int64_t>(inbox_.size()) + stats_.queue_depth >=
      options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrCat("request queue is full (",
                                                     options_.max_queue,
                                                     " waiting); retry later"));
  }
  // The output stage learns of the request before the engine thread can
  // produce events for it.
  output_->Register(id, p, std::move(stream));
  inbox_.push_back(std::move(active));
  ++in_flight_;
  work_.Signal();
  return absl::OkStatus();
}

void Engine::Abort(uint64_t id) {
  absl::MutexLock lock(&mu_);
  aborts_.push_back(id);
  work_.Signal();
}

void Engine::BeginDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

int64_t Engine::InFlight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

void Engine::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    work_.Signal();
  }
  if (thread_.joinable()) thread_.join();
  if (output_) output_->Stop();
}

EngineStats Engine::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void Engine::PublishStats() {
  EngineStats s = counters_;
  s.queue_depth = scheduler_->num_waiting();
  s.running = scheduler_->num_running();
  s.kv_blocks_total = pool_->num_blocks();
  s.kv_cache_bytes = cache_->total_bytes();
  s.kv_blocks_free = pool_->num_free_blocks();
  s.kv_blocks_cached = pool_->num_cached_free_blocks();
  s.prefix_cache_hit_tokens = scheduler_->prefix_hit_tokens();
  s.preemptions = scheduler_->num_preemptions();
  {
    absl::MutexLock lock(&mu_);
    stats_ = s;
  }
  if (observer_) {
    observer_->OnGauges(name_, s);
    if (model_->config().moe()) {
      model_->ExpertTokenCounts(&expert_tokens_);
      observer_->OnExpertTokens(expert_tokens_, model_->config().n_experts);
    }
  }
}

SequenceEvent& Engine::NewEvent(Active* a) {
  if (!events_) events_ = output_->TakeBuffer();
  SequenceEvent& e = events_->events.emplace_back();
  e.id = a->id;
  e.num_cached_tokens = a->sched.num_cached_tokens;
  if (a->first_scheduled && !a->first_scheduled_reported) {
    e.first_scheduled = a->first_scheduled;
    a->first_scheduled_reported = true;
  }
  return e;
}

void Engine::EndRequest(Active* a, EngineFinish finish, absl::Status error) {
  if (a->finished) return;
  a->finished = true;
  scheduler_->Finish(&a->sched);
  SequenceEvent& e = NewEvent(a);
  e.finish = finish;
  e.error = std::move(error);
  ++counters_.requests_finished;
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

void Engine::OnToken(Active* a, int32_t token, float logprob, int32_t top_begin,
                     int32_t top_count) {
  if (!a->params.ignore_eos && tokenizer_->IsEndOfGeneration(token)) {
    EndRequest(a, EngineFinish::kStop, absl::OkStatus());
    return;
  }
  ++a->completion_tokens;
  ++counters_.generation_tokens;
  SequenceEvent& e = NewEvent(a);
  e.token = token;
  e.logprob = logprob;
  e.top_begin = top_begin;
  e.top_count = top_count;
  bool constrained = false;
  if (a->trigger) {
    // This token has already been fed to a constraint it arms.
    constrained = ArmLazyConstraint(a, token);
  } else if (a->constraint) {
    if (absl::Status s = a->constraint->AcceptToken(token); !s.ok()) {
      EndRequest(a, EngineFinish::kCancelled,
                 absl::InternalError(absl::StrCat(
                     "output constraint refused a token: ", s.message())));
      return;
    }
    constrained = true;
  }
  if (constrained) {
    // Only end-of-generation could follow (the output is complete), or one
    // was accepted (under ignore_eos it is not the end by itself, but the
    // constraint allows nothing after it).
    if (a->constraint->IsComplete() || a->constraint->IsEnded()) {
      EndRequest(a, EngineFinish::kStop, absl::OkStatus());
      return;
    }
  }
  const bool out_of_context =
      static_cast<int64_t>(a->sched.tokens.size()) >= context_size();
  if (a->completion_tokens >= a->params.max_tokens || out_of_context)
    EndRequest(a, EngineFinish::kLength, absl::OkStatus());
}

bool Engine::ArmLazyConstraint(Active* a, int32_t token) {
  const constrained::CompiledConstraint& c = *a->params.constraint;
  std::optional<absl::string_view> from_trigger =
      a->trigger->Push(c.trie().TokenBytes(token));
  if (!from_trigger) return false;
  // The output from the trigger on (this token included) must start a
  // match; if it cannot (the token ran on past the trigger into something
  // the constraint refuses), this occurrence stays free text, as
  // unconstrained output would, and the trigger is looked for again.
  absl::StatusOr<constrained::ConstraintState> state = c.NewState();
  if (!state.ok() || !state->AcceptText(*from_trigger).ok()) return false;
  a->constraint = std::move(*state);
  a->trigger.reset();
  return true;
}

bool Engine::DrainInbox(std::vector<std::unique_ptr<Active>>* added,
                        std::vector<uint64_t>* aborts, bool wait) {
  absl::MutexLock lock(&mu_);
  while (wait && !stopping_ && inbox_.empty() && aborts_.empty() &&
         !scheduler_->HasWork()) {
    work_.Wait(&mu_);
  }
  if (stopping_) return false;
  while (!inbox_.empty()) {
    added->push_back(std::move(inbox_.front()));
    inbox_.pop_front();
  }
  aborts->swap(aborts_);
  return true;
}

void Engine::RunStep() {
  const SteadyTime step_start = Clock::now();
  const int64_t preempted_before = scheduler_->num_preemptions();
  SchedulerOutput out = scheduler_->Schedule();
  if (out.scheduled.empty()) {
    // Nothing fits right now (cannot happen with validated requests);
    // avoid spinning.
    absl::MutexLock lock(&mu_);
    work_.WaitWithTimeout(&mu_, absl::Milliseconds(5));
    return;
  }
  batch_tokens_.clear();
  batch_seqs_.clear();
  int32_t num_logit_rows = 0;
  for (const ScheduledRequest& s : out.scheduled) {
    SchedRequest* r = s.request;
    batch_tokens_.insert(
        batch_tokens_.end(), r->tokens.begin() + r->num_computed_tokens,
        r->tokens.begin() + r->num_computed_tokens + s.num_tokens);
    auto it = active_.find(r->id);
    LUMEN_CHECK(it != active_.end(), "scheduled request is not active");
    Active* a = it->second.get();
    batch_seqs_.push_back({s.num_tokens, r->num_computed_tokens, r->blocks,
                           s.sample, a->params.adapter.get()});
    num_logit_rows += s.sample;
    if (!a->first_scheduled) a->first_scheduled = step_start;
    if (r->num_computed_tokens < r->num_prompt_tokens) {
      counters_.prompt_tokens +=
          std::min(s.num_tokens, r->num_prompt_tokens - r->num_computed_tokens);
    }
  }
  const int64_t vocab = model_->config().n_vocab;
  const SteadyTime forward_start = Clock::now();
  absl::Status st = model_->Forward(
      {batch_tokens_, batch_seqs_}, cache_.get(),
      std::span(logits_.data(), static_cast<size_t>(num_logit_rows) * vocab));
  const double forward_seconds = SecondsBetween(forward_start, Clock::now());
  if (!st.ok()) {
    // A failed step fails every request in it, cleanly.
    for (const ScheduledRequest& s : out.scheduled) {
      EndRequest(active_.at(s.request->id).get(), EngineFinish::kCancelled,
                 absl::InternalError(
                     absl::StrCat("model step failed: ", st.message())));
    }
  } else {
    sampled_.clear();
    sampled_rows_.clear();
    if (!events_) events_ = output_->TakeBuffer();
    int row = 0;
    for (const ScheduledRequest& s : out.scheduled) {
      if (!s.sample) continue;
      Active* a = active_.at(s.request->id).get();
      std::span<float> logits(logits_.data() + row * vocab, vocab);
      ++row;
      TokenLogprob chosen{};
      absl::StatusOr<int32_t> token;
      if (a->constraint) {
        absl::Status m = a->constraint->FillAllowedMask(mask_);
        token = m.ok() ? sampler_.SampleMasked(logits, mask_, &a->sampler_state,
                                               a->params.logprobs, &chosen,
                                               &alternatives_)
                       : absl::StatusOr<int32_t>(m);
      } else {
        token = sampler_.Sample(logits, &a->sampler_state, a->params.logprobs,
                                &chosen, &alternatives_);
      }
      if (!token.ok()) {
        EndRequest(a, EngineFinish::kCancelled, token.status());
        continue;
      }
      a->sampler_state.Accept(*token);
      const int32_t top_begin = static_cast<int32_t>(events_->top.size());
      int32_t top_count = 0;
      if (a->params.logprobs > 0) {
        events_->top.insert(events_->top.end(), alternatives_.begin(),
                            alternatives_.end());
        top_count = static_cast<int32_t>(alternatives_.size());
      }
      sampled_.push_back(*token);
      sampled_rows_.push_back({a, chosen.logprob, top_begin, top_count});
    }
    // Only requests that sampled advance here; one whose sampling failed
    // has already left the scheduler.
    scheduler_->Update(out, sampled_);
    for (size_t i = 0; i < sampled_.size(); ++i) {
      const SampledRow& r = sampled_rows_[i];
      OnToken(r.active, sampled_[i], r.logprob, r.top_begin, r.top_count);
    }
  }
  const double step_seconds = SecondsBetween(step_start, Clock::now());
  if (st.ok()) {
    prefill_budget_->Observe(out.num_decoding,
                             out.num_tokens - out.num_decoding, step_seconds);
  }
  ++counters_.steps;
  counters_.step_seconds_total += step_seconds;
  counters_.forward_seconds_total += forward_seconds;
  counters_.step_tokens_total += out.num_tokens;
  if (observer_) {
    observer_->OnStep({out.num_tokens,
                       static_cast<int32_t>(out.scheduled.size()), step_seconds,
                       forward_seconds,
                       static_cast<int32_t>(scheduler_->num_preemptions() -
                                            preempted_before)});
  }
}

void Engine::Loop() {
  // This thread's OpenMP team: every parallel region of the kernels it runs
  // has exactly num_threads threads, which the model's scratch is sized for.
  omp_set_num_threads(options_.num_threads);
  std::vector<std::unique_ptr<Active>> added;
  std::vector<uint64_t> aborts;
  std::vector<uint64_t> done;
  // While idle, the KV arena is backed with memory a few MiB at a time
  // (KvCache::PopulateSome), so that no step pays first writes; a request
  // arriving meanwhile waits for one installment at most.
  bool populating = true;
  int64_t installment = kKvPopulateInstallmentBytes;
  while (DrainInbox(&added, &aborts, /*wait=*/!populating)) {
    for (auto& a : added) {
      scheduler_->Add(&a->sched);
      const uint64_t id = a->id;
      active_[id] = std::move(a);
    }
    added.clear();
    for (uint64_t id : aborts) {
      auto it = active_.find(id);
      if (it != active_.end())
        EndRequest(it->second.get(), EngineFinish::kCancelled,
                   absl::OkStatus());
    }
    aborts.clear();
    const SteadyTime now = Clock::now();
    for (auto& [id, a] : active_) {
      if (!a->finished && a->params.deadline && now > *a->params.deadline) {
        EndRequest(a.get(), EngineFinish::kCancelled,
                   absl::DeadlineExceededError(
                       "deadline exceeded before generation finished"));
      }
    }
    if (scheduler_->HasWork()) {
      RunStep();
    } else if (populating) {
      const SteadyTime start = Clock::now();
      populating = cache_->PopulateSome(installment);
      if (SecondsBetween(start, Clock::now()) > kKvPopulateSlowSeconds)
        installment = std::max(installment / 2, kKvPopulateMinBytes);
      counters_.kv_cache_populated_bytes = cache_->populated_bytes();
    }
    // Stats first: dropping a finished request can release what a caller
    // waits for (an adapter being unloaded), and once it returns, Stats()
    // must no longer count that request as running.
    PublishStats();
    for (auto& [id, a] : active_) {
      if (a->finished) done.push_back(id);
    }
    for (uint64_t id : done) active_.erase(id);
    done.clear();
    if (events_ && !events_->events.empty()) {
      events_->time = Clock::now();
      output_->Post(std::move(events_));
    }
  }
  // Stopping: whatever is still in flight ends as cancelled.
  for (auto& [id, a] : active_)
    EndRequest(a.get(), EngineFinish::kCancelled, absl::OkStatus());
  active_.clear();
  std::deque<std::unique_ptr<Active>> queued;
  {
    absl::MutexLock lock(&mu_);
    queued.swap(inbox_);
  }
  for (auto& a : queued) {
    SequenceEvent& e = NewEvent(a.get());
    e.finish = EngineFinish::kCancelled;
    e.error = absl::UnavailableError("server is shutting down");
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }
  if (events_ && !events_->events.empty()) {
    events_->time = Clock::now();
    output_->Post(std::move(events_));
  }
  PublishStats();
}

}  // namespace lumen::engine
