#include "engine/output_processor.h"

#include "engine/engine_observer.h"

namespace lumen::engine {

OutputProcessor::OutputProcessor(std::string model, const Tokenizer* tokenizer,
                                 EngineObserver* observer,
                                 std::function<void(uint64_t)> abort)
    : model_(std::move(model)),
      tokenizer_(tokenizer),
      observer_(observer),
      abort_(std::move(abort)) {
  thread_ = std::thread([this] { Loop(); });
}

OutputProcessor::~OutputProcessor() { Stop(); }

void OutputProcessor::Register(uint64_t id, const GenerateParams& params,
                               std::shared_ptr<RequestStream> stream) {
  const int32_t bos = tokenizer_->vocab().bos;
  Registration r{
      id, params.stop, static_cast<int32_t>(params.prompt_tokens.size()),
      params.logprobs > 0,
      // Right after a lone BOS the text starts: an SPM
      // tokenizer's added leading space is dropped, as Decode does.
      params.prompt_tokens.size() == 1 && params.prompt_tokens[0] == bos,
      params.adapter_name, params.api, params.arrival, std::move(stream),
      /*adapter_hold=*/params.adapter, params.on_finished};
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(r));
  work_.Signal();
}

void OutputProcessor::Post(std::unique_ptr<StepEvents> step) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(step));
  work_.Signal();
}

std::unique_ptr<StepEvents> OutputProcessor::TakeBuffer() {
  {
    absl::MutexLock lock(&mu_);
    if (!spare_.empty()) {
      std::unique_ptr<StepEvents> b = std::move(spare_.back());
      spare_.pop_back();
      return b;
    }
  }
  return std::make_unique<StepEvents>();
}

void OutputProcessor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    work_.Signal();
  }
  if (thread_.joinable()) thread_.join();
}

void OutputProcessor::Loop() {
  std::deque<Item> batch;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) work_.Wait(&mu_);
      if (queue_.empty()) break;  // stopping, and everything is processed
      batch.swap(queue_);
    }
    for (Item& item : batch) {
      if (auto* reg = std::get_if<Registration>(&item)) {
        const uint64_t id = reg->id;
        requests_[id] = std::make_unique<Request>(*tokenizer_, std::move(*reg));
        continue;
      }
      std::unique_ptr<StepEvents>& step = std::get<1>(item);
      Process(*step);
      step->Clear();
      absl::MutexLock lock(&mu_);
      spare_.push_back(std::move(step));
    }
    batch.clear();
  }
}

void OutputProcessor::Process(StepEvents& step) {
  for (SequenceEvent& e : step.events) {
    auto it = requests_.find(e.id);
    // Unknown: already ended here (a stop string), the engine's late events
    // for it are dropped.
    if (it == requests_.end()) continue;
    Request& r = *it->second;
    r.num_cached_tokens = e.num_cached_tokens;
    if (e.first_scheduled) r.first_scheduled = e.first_scheduled;
    GenerationDelta d;
    bool stopped = false;
    if (e.token >= 0) {
      if (!r.first_token) r.first_token = step.time;
      ++r.completion_tokens;
      d.token_ids.push_back(e.token);
      if (r.reg.logprobs) {
        LogprobEntry entry{
            e.token, tokenizer_->TokenToPiece(e.token, true), e.logprob, {}};
        entry.top.assign(step.top.begin() + e.top_begin,
                         step.top.begin() + e.top_begin + e.top_count);
        d.logprobs.push_back(std::move(entry));
      }
      d.text = r.stop.Push(r.detokenizer.Push(e.token), &stopped);
    }
    if (stopped) {
      abort_(e.id);
      Finish(r, std::move(d), "stop_sequence", absl::OkStatus(), step.time);
      requests_.erase(it);
      continue;
    }
    if (e.finish == EngineFinish::kNone) {
      r.reg.stream->Push(std::move(d));
      continue;
    }
    std::string reason = e.finish == EngineFinish::kStop     ? "stop"
                         : e.finish == EngineFinish::kLength ? "length"
                                                             : "cancelled";
    if (e.finish != EngineFinish::kCancelled) {
      // The end releases what was held back (an unfinished character, text
      // that could have begun a stop string) unless it completes one.
      d.text += r.stop.Push(r.detokenizer.Flush(), &stopped);
      if (stopped) {
        reason = "stop_sequence";
      } else {
        d.text += r.stop.Flush();
      }
    }
    Finish(r, std::move(d), std::move(reason), std::move(e.error), step.time);
    requests_.erase(it);
  }
}

void OutputProcessor::Finish(Request& r, GenerationDelta d, std::string reason,
                             absl::Status error, SteadyTime now) {
  d.finished = true;
  d.finish_reason = std::move(reason);
  d.error = std::move(error);
  d.usage = {r.reg.num_prompt_tokens, r.completion_tokens, r.num_cached_tokens};
  d.timings.queue_seconds =
      r.first_scheduled ? SecondsBetween(r.reg.arrival, *r.first_scheduled) : 0;
  d.timings.total_seconds = SecondsBetween(r.reg.arrival, now);
  if (r.first_token) {
    d.timings.time_to_first_token_seconds =
        SecondsBetween(r.reg.arrival, *r.first_token);
    if (r.completion_tokens > 1) {
      d.timings.time_per_output_token_seconds =
          SecondsBetween(*r.first_token, now) / (r.completion_tokens - 1);
    }
  }
  const RequestSummary summary{r.reg.id,        model_,        r.reg.adapter,
                               r.reg.api,       d.usage,       d.timings,
                               d.finish_reason, d.error.code()};
  // Metrics and the log first: a client that sees its request end finds it
  // counted.
  if (observer_) observer_->OnRequestFinished(summary);
  if (r.reg.on_finished) r.reg.on_finished(d.usage);
  r.reg.stream->Push(std::move(d));
  r.reg.adapter_hold.reset();
}

}  // namespace lumen::engine
