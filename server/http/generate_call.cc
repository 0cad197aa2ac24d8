#include "server/http/generate_call.h"

namespace lumen::server::http {

std::shared_ptr<GenerateCall> GenerateCall::Create() {
  std::shared_ptr<GenerateCall> call(new GenerateCall());
  call->stream_ = std::make_shared<engine::RequestStream>();
  std::weak_ptr<GenerateCall> weak = call;
  call->stream_->SetNotifier([weak] {
    if (auto strong = weak.lock()) strong->Notify();
  });
  return call;
}

void GenerateCall::Start(GeneratePipeline* pipeline,
                         lumen::v1::GenerateRequest request,
                         const Caller& principal) {
  {
    absl::MutexLock lock(&mu_);
    pipeline_ref_ = shared_from_this();
  }
  // HTTP has no deadline of its own: a client that gives up disconnects.
  pipeline->Start(std::move(request), principal, std::nullopt, "http", stream_,
                  this);
}

void GenerateCall::OnAccepted(GenerateStart start) {
  std::shared_ptr<GenerateCall> keep;  // released after the lock below
  absl::MutexLock lock(&mu_);
  keep = std::move(pipeline_ref_);
  start_ = std::move(start);
  started_ = true;
}

void GenerateCall::OnRejected(absl::Status status) {
  std::shared_ptr<GenerateCall> keep;
  absl::MutexLock lock(&mu_);
  keep = std::move(pipeline_ref_);
  rejected_ = std::move(status);
  started_ = true;
}

absl::StatusOr<const GenerateStart*> GenerateCall::AwaitStart() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&started_));
  if (!rejected_.ok()) return rejected_;
  return &start_;
}

void GenerateCall::Notify() {
  absl::MutexLock lock(&mu_);
  output_pending_ = true;
}

bool GenerateCall::AwaitOutput(absl::Duration timeout,
                               engine::GenerationDelta* delta) {
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&output_pending_), timeout);
    output_pending_ = false;
  }
  return stream_->Take(delta);
}

void GenerateCall::Abort() {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || !rejected_.ok() || finished_) return;
    finished_ = true;
  }
  start_.engine->Abort(start_.id);
}

void GenerateCall::MarkFinished() {
  absl::MutexLock lock(&mu_);
  finished_ = true;
}

}  // namespace lumen::server::http
