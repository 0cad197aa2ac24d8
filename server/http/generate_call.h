#pragma once
// GenerateCall: one HTTP generate request's end of the GeneratePipeline (its
// GenerateSink) and of the engine's output (its RequestStream). The engine's
// output thread only signals (the stream's notifier takes a mutex briefly
// and never blocks); the HTTP worker thread that serves the connection
// waits here for the start, then for output, and writes it. A client that
// went away is noticed by the DisconnectWatcher (or the worker's write),
// which aborts the request so that its KV blocks are freed at the next
// engine step.
//
// Threads: OnAccepted/OnRejected from the pipeline (the starting thread or
// an executor thread); the notifier from the output thread; Abort also from
// the DisconnectWatcher's thread; the rest from the HTTP worker. Owned by
// shared_ptr: the notifier holds it weakly, the pipeline's reference lasts
// until its sink call returns.

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/generation.h"
#include "server/generate_pipeline.h"

namespace lumen::server::http {

class GenerateCall final : public GenerateSink,
                           public std::enable_shared_from_this<GenerateCall> {
 public:
  static std::shared_ptr<GenerateCall> Create();

  // Starts `request` on `pipeline`; the answer comes through AwaitStart.
  void Start(GeneratePipeline* pipeline, lumen::v1::GenerateRequest request,
             const Caller& principal);

  // Blocks until the pipeline accepted (the start) or refused (its status)
  // the request. The start stays valid while the call lives.
  absl::StatusOr<const GenerateStart*> AwaitStart() ABSL_LOCKS_EXCLUDED(mu_);

  // Waits at most `timeout` for output; true with everything pending moved
  // into *delta (merged), false when nothing came.
  bool AwaitOutput(absl::Duration timeout, engine::GenerationDelta* delta)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The client is gone: cancels the request in the engine unless it ended.
  void Abort() ABSL_LOCKS_EXCLUDED(mu_);
  // The last delta was taken: Abort has nothing left to cancel.
  void MarkFinished() ABSL_LOCKS_EXCLUDED(mu_);

  void OnAccepted(GenerateStart start) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnRejected(absl::Status status) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  GenerateCall() = default;
  void Notify() ABSL_LOCKS_EXCLUDED(mu_);

  std::shared_ptr<engine::RequestStream> stream_;
  absl::Mutex mu_;
  // The pipeline's reference, dropped by the sink call.
  std::shared_ptr<GenerateCall> pipeline_ref_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // accepted or rejected
  absl::Status rejected_ ABSL_GUARDED_BY(mu_);
  GenerateStart start_;  // written once before started_, then read-only
  bool output_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lumen::server::http
