#include "server/executor.h"

#include "absl/strings/str_cat.h"

namespace lumen::server {

Executor::Executor(std::string name, int threads, int max_queue)
    : name_(std::move(name)), max_queue_(max_queue) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

Executor::~Executor() { Shutdown(); }

absl::Status Executor::Post(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::UnavailableError(
        absl::StrCat(name_, " executor is shutting down"));
  }
  if (static_cast<int>(queue_.size()) >= max_queue_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        name_, " queue is full (", max_queue_, " tasks waiting); retry later"));
  }
  queue_.push_back(std::move(task));
  work_.Signal();
  return absl::OkStatus();
}

void Executor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    work_.SignalAll();
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Executor::Work() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) work_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace lumen::server
