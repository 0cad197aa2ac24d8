#pragma once
// Executor: a bounded pool of threads the server owns, for the work gRPC
// callback threads must not do (they never block): RAG retrieval, constraint
// compilation, embedding, knowledge-store I/O, adapter loading. A full queue
// is RESOURCE_EXHAUSTED, so overload is visible instead of queueing without
// bound. The destructor runs what is queued, then joins every thread.
// Thread-safe.

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace lumen::server {

class Executor {
 public:
  // `threads` >= 1 workers; at most `max_queue` tasks waiting.
  Executor(std::string name, int threads, int max_queue);
  ~Executor();

  // Runs `task` on a worker. ResourceExhausted (naming the executor) when
  // max_queue tasks are already waiting; Unavailable after Shutdown.
  absl::Status Post(std::function<void()> task) ABSL_LOCKS_EXCLUDED(mu_);
  // Refuses new tasks, runs the queued ones and joins the workers.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Work();

  const std::string name_;
  const int max_queue_;
  absl::Mutex mu_;
  absl::CondVar work_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace lumen::server
