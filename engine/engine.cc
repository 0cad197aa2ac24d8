#include "engine/engine.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "engine/model/lora_adapter.h"

namespace lumen::engine {

namespace {
using Clock = std::chrono::steady_clock;

double SecondsBetween(SteadyTime a, SteadyTime b) {
  return std::chrono::duration<double>(b - a).count();
}

uint64_t RandomSeed() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  return rng();
}
}  // namespace

struct Engine::Active {
  Active(uint64_t id, GenerateParams p, std::shared_ptr<RequestStream> s,
         const Tokenizer& tok, bool at_text_start)
      : id(id),
        params(std::move(p)),
        stream(std::move(s)),
        sampler_state(params.sampling),
        detok(tok, at_text_start),
        stop(params.stop) {}
  uint64_t id;
  GenerateParams params;
  std::shared_ptr<RequestStream> stream;
  SchedRequest sched;
  SamplerState sampler_state;
  StreamingDetokenizer detok;
  StopMatcher stop;
  int32_t completion_tokens = 0;
  SteadyTime arrival = Clock::now();
  std::optional<SteadyTime> first_scheduled, first_token;
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
  KvCacheShape shape{c.n_layers, c.n_kv_heads, c.head_dim, options.block_size,
                     0};
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
  e->logits_.assign(static_cast<size_t>(options.max_running) * c.n_vocab, 0.0f);
  e->batch_tokens_.reserve(options.max_batch_tokens);
  e->batch_seqs_.reserve(options.max_running);
  e->sampled_.reserve(options.max_running);
  e->PublishStats();
  e->thread_ = std::thread([raw = e.get()] { raw->Loop(); });
  return e;
}

Engine::~Engine() { Stop(); }

absl::Status Engine::Submit(uint64_t id, GenerateParams params,
                            std::shared_ptr<RequestStream> stream) {
  if (params.prompt_tokens.empty())
    return absl::InvalidArgumentError("prompt is empty");
  if (static_cast<int64_t>(params.prompt_tokens.size()) >= context_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt of ", params.prompt_tokens.size(),
        " tokens does not fit the context of ", context_size(), " tokens"));
  }
  if (!params.sampling.seed) params.sampling.seed = RandomSeed();
  const Vocab& v = tokenizer_->vocab();
  const bool at_text_start =
      params.prompt_tokens.size() == 1 && params.prompt_tokens[0] == v.bos;
  auto active = std::make_unique<Active>(
      id, std::move(params), std::move(stream), *tokenizer_, at_text_start);
  active->sched.id = id;
  active->sched.tokens = active->params.prompt_tokens;
  active->sched.num_prompt_tokens =
      static_cast<int32_t>(active->sched.tokens.size());
  // KV computed under one adapter must never serve another.
  if (active->params.adapter)
    active->sched.cache_salt = active->params.adapter->id();
  absl::MutexLock lock(&mu_);
  if (draining_ || stopping_)
    return absl::UnavailableError("server is shutting down");
  if (static_cast<int64_t>(inbox_.size()) + stats_.queue_depth >=
      options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrCat("request queue is full (",
                                                     options_.max_queue,
                                                     " waiting); retry later"));
  }
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
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    work_.Signal();
  }
  if (thread_.joinable()) thread_.join();
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

void Engine::FinishRequest(Active* a, std::string reason, absl::Status error) {
  if (a->finished) return;
  a->finished = true;
  scheduler_->Finish(&a->sched);
  const SteadyTime now = Clock::now();
  GenerationDelta d;
  d.finished = true;
  d.finish_reason = std::move(reason);
  d.error = error;
  d.usage = {a->sched.num_prompt_tokens, a->completion_tokens,
             a->sched.num_cached_tokens};
  d.timings.queue_seconds =
      a->first_scheduled ? SecondsBetween(a->arrival, *a->first_scheduled) : 0;
  d.timings.total_seconds = SecondsBetween(a->arrival, now);
  if (a->first_token) {
    d.timings.time_to_first_token_seconds =
        SecondsBetween(a->arrival, *a->first_token);
    if (a->completion_tokens > 1) {
      d.timings.time_per_output_token_seconds =
          SecondsBetween(*a->first_token, now) / (a->completion_tokens - 1);
    }
  }
  const RequestSummary summary{a->id,       name_,     a->params.adapter_name,
                               d.usage,     d.timings, d.finish_reason,
                               error.code()};
  a->stream->Push(std::move(d));
  ++counters_.requests_finished;
  if (observer_) observer_->OnRequestFinished(summary);
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

void Engine::EmitToken(Active* a, int32_t token, const TokenLogprob& chosen,
                       std::vector<TokenLogprob>* alternatives) {
  if (!a->first_token) a->first_token = Clock::now();
  if (!a->params.ignore_eos && tokenizer_->IsEndOfGeneration(token)) {
    GenerationDelta d;
    bool stopped;
    d.text = a->stop.Push(a->detok.Flush(), &stopped);
    d.text += a->stop.Flush();
    if (!d.text.empty()) a->stream->Push(std::move(d));
    FinishRequest(a, "stop", absl::OkStatus());
    return;
  }
  ++a->completion_tokens;
  ++counters_.generation_tokens;
  GenerationDelta d;
  d.token_ids.push_back(token);
  if (a->params.logprobs > 0) {
    LogprobEntry e{
        token, tokenizer_->TokenToPiece(token, true), chosen.logprob, {}};
    e.top = std::move(*alternatives);
    d.logprobs.push_back(std::move(e));
  }
  bool stopped = false;
  d.text = a->stop.Push(a->detok.Push(token), &stopped);
  if (stopped) {
    a->stream->Push(std::move(d));
    FinishRequest(a, "stop_sequence", absl::OkStatus());
    return;
  }
  const bool out_of_context =
      static_cast<int64_t>(a->sched.tokens.size()) >= context_size();
  if (a->completion_tokens >= a->params.max_tokens || out_of_context) {
    d.text += a->stop.Push(a->detok.Flush(), &stopped);
    if (!stopped) d.text += a->stop.Flush();
    a->stream->Push(std::move(d));
    FinishRequest(a, stopped ? "stop_sequence" : "length", absl::OkStatus());
    return;
  }
  a->stream->Push(std::move(d));
}

void Engine::Loop() {
  std::vector<std::unique_ptr<Active>> added;
  std::vector<uint64_t> aborts;
  std::vector<uint64_t> done;
  const int64_t vocab = model_->config().n_vocab;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && inbox_.empty() && aborts_.empty() &&
             !scheduler_->HasWork()) {
        work_.Wait(&mu_);
      }
      if (stopping_) break;
      while (!inbox_.empty()) {
        added.push_back(std::move(inbox_.front()));
        inbox_.pop_front();
      }
      aborts.swap(aborts_);
    }
    for (auto& a : added) {
      scheduler_->Add(&a->sched);
      const uint64_t id = a->id;
      active_[id] = std::move(a);
    }
    added.clear();
    for (uint64_t id : aborts) {
      auto it = active_.find(id);
      if (it != active_.end())
        FinishRequest(it->second.get(), "cancelled", absl::OkStatus());
    }
    aborts.clear();
    const SteadyTime now = Clock::now();
    for (auto& [id, a] : active_) {
      if (!a->finished && a->params.deadline && now > *a->params.deadline) {
        FinishRequest(a.get(), "cancelled",
                      absl::DeadlineExceededError(
                          "deadline exceeded before generation finished"));
      }
    }

    if (scheduler_->HasWork()) {
      const SteadyTime step_start = Clock::now();
      const int64_t preempted_before = scheduler_->num_preemptions();
      SchedulerOutput out = scheduler_->Schedule();
      if (out.scheduled.empty()) {
        // Nothing fits right now (cannot happen with validated requests);
        // avoid spinning.
        absl::MutexLock lock(&mu_);
        work_.WaitWithTimeout(&mu_, absl::Milliseconds(5));
      } else {
        batch_tokens_.clear();
        batch_seqs_.clear();
        for (const ScheduledRequest& s : out.scheduled) {
          SchedRequest* r = s.request;
          batch_tokens_.insert(
              batch_tokens_.end(), r->tokens.begin() + r->num_computed_tokens,
              r->tokens.begin() + r->num_computed_tokens + s.num_tokens);
          Active* a = active_.at(r->id).get();
          batch_seqs_.push_back({s.num_tokens, r->num_computed_tokens,
                                 r->blocks, s.sample, a->params.adapter.get()});
          if (!a->first_scheduled) a->first_scheduled = step_start;
          if (r->num_computed_tokens < r->num_prompt_tokens) {
            counters_.prompt_tokens += std::min(
                s.num_tokens, r->num_prompt_tokens - r->num_computed_tokens);
          }
        }
        const SteadyTime forward_start = Clock::now();
        absl::Status st = model_->Forward({batch_tokens_, batch_seqs_},
                                          cache_.get(), logits_.data());
        const double forward_seconds =
            SecondsBetween(forward_start, Clock::now());
        if (!st.ok()) {
          // A failed step fails every request in it, cleanly.
          for (const ScheduledRequest& s : out.scheduled) {
            FinishRequest(active_.at(s.request->id).get(), "cancelled",
                          absl::InternalError(absl::StrCat(
                              "model step failed: ", st.message())));
          }
        } else {
          sampled_.clear();
          int row = 0;
          for (const ScheduledRequest& s : out.scheduled) {
            if (!s.sample) continue;
            Active* a = active_.at(s.request->id).get();
            TokenLogprob chosen{};
            sampled_.push_back(
                sampler_.Sample(std::span(logits_.data() + row * vocab, vocab),
                                &a->sampler_state, a->params.logprobs, &chosen,
                                &alternatives_));
            ++row;
            chosen_.push_back(chosen);
            alts_.push_back(alternatives_);
          }
          scheduler_->Update(out, sampled_);
          int i = 0;
          for (const ScheduledRequest& s : out.scheduled) {
            if (!s.sample) continue;
            EmitToken(active_.at(s.request->id).get(), sampled_[i], chosen_[i],
                      &alts_[i]);
            ++i;
          }
          chosen_.clear();
          alts_.clear();
        }
        const double step_seconds = SecondsBetween(step_start, Clock::now());
        ++counters_.steps;
        counters_.step_seconds_total += step_seconds;
        counters_.forward_seconds_total += forward_seconds;
        counters_.step_tokens_total += out.num_tokens;
        if (observer_) {
          observer_->OnStep(
              {out.num_tokens, static_cast<int32_t>(out.scheduled.size()),
               step_seconds, forward_seconds,
               static_cast<int32_t>(scheduler_->num_preemptions() -
                                    preempted_before)});
        }
      }
    }
    for (auto& [id, a] : active_) {
      if (a->finished) done.push_back(id);
    }
    for (uint64_t id : done) active_.erase(id);
    done.clear();
    PublishStats();
  }
  for (auto& [id, a] : active_)
    FinishRequest(a.get(), "cancelled", absl::OkStatus());
  active_.clear();
  absl::MutexLock lock(&mu_);
  for (auto& a : inbox_) {
    GenerationDelta d;
    d.finished = true;
    d.finish_reason = "cancelled";
    d.error = absl::UnavailableError("server is shutting down");
    a->stream->Push(std::move(d));
    --in_flight_;
  }
  inbox_.clear();
}

}  // namespace lumen::engine
