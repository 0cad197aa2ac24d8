#include "engine/generation.h"

namespace lumen::engine {

void GenerationDelta::MergeFrom(GenerationDelta&& next) {
  text += next.text;
  token_ids.insert(token_ids.end(), next.token_ids.begin(),
                   next.token_ids.end());
  for (LogprobEntry& e : next.logprobs) logprobs.push_back(std::move(e));
  if (next.finished) {
    finished = true;
    finish_reason = std::move(next.finish_reason);
    error = std::move(next.error);
    usage = next.usage;
    timings = next.timings;
  }
}

void RequestStream::SetNotifier(std::function<void()> notify) {
  absl::MutexLock lock(&mu_);
  notify_ = std::move(notify);
}

void RequestStream::Push(GenerationDelta delta) {
  std::function<void()> notify;
  {
    absl::MutexLock lock(&mu_);
    if (pending_) {
      pending_->MergeFrom(std::move(delta));
    } else {
      pending_ = std::move(delta);
    }
    notify = notify_;
  }
  if (notify) notify();
}

bool RequestStream::Take(GenerationDelta* out) {
  absl::MutexLock lock(&mu_);
  if (!pending_) return false;
  *out = std::move(*pending_);
  pending_.reset();
  return true;
}

}  // namespace lumen::engine
