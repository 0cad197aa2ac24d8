#include "server/generate_reactors.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/knowledge_service.h"
#include "server/quota.h"
#include "server/status_util.h"
#include "server/tool_calls.h"

namespace lumen::server {

namespace {

using lumen::v1::GenerateRequest;
using lumen::v1::GenerateResponse;
using lumen::v1::GenerateStreamResponse;

std::optional<engine::SteadyTime> DeadlineOf(grpc::CallbackServerContext* ctx) {
  const auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max()) return std::nullopt;
  return engine::SteadyTime::clock::now() +
         std::chrono::duration_cast<engine::SteadyTime::duration>(
             d - std::chrono::system_clock::now());
}

// The engine gives each alternative's id only; its bytes come from the
// model's tokenizer, as the chosen token's do.
template <typename Proto>
void FillLogprobs(const std::vector<engine::LogprobEntry>& entries,
                  const engine::Tokenizer& tokenizer, Proto* out) {
  for (const engine::LogprobEntry& e : entries) {
    lumen::v1::TokenLogprob* lp = out->add_logprobs();
    lp->set_token_id(e.token_id);
    lp->set_token(e.token);
    lp->set_logprob(e.logprob);
    for (const engine::TokenLogprob& t : e.top) {
      lumen::v1::TopLogprob* top = lp->add_top();
      top->set_token_id(t.token);
      top->set_token(tokenizer.TokenToPiece(t.token, true));  // bytes
      top->set_logprob(t.logprob);
    }
  }
}

// The last message's fields; the finish reason is "tool_calls" when the
// response called one (ToolCallOutput::FinishReason).
template <typename Proto>
void FillFinal(const engine::GenerationDelta& d, double retrieval_seconds,
               const std::optional<ToolCallOutput>& tools, Proto* out) {
  out->set_finish_reason(tools ? tools->FinishReason(d.finish_reason)
                               : d.finish_reason);
  out->mutable_usage()->set_prompt_tokens(d.usage.prompt_tokens);
  out->mutable_usage()->set_completion_tokens(d.usage.completion_tokens);
  out->mutable_usage()->set_cached_prompt_tokens(d.usage.cached_prompt_tokens);
  lumen::v1::Timings* t = out->mutable_timings();
  t->set_queue_seconds(d.timings.queue_seconds);
  t->set_time_to_first_token_seconds(d.timings.time_to_first_token_seconds);
  t->set_total_seconds(d.timings.total_seconds);
  t->set_time_per_output_token_seconds(d.timings.time_per_output_token_seconds);
  t->set_retrieval_seconds(retrieval_seconds);
}

// Call pieces join the message's calls: a piece of a call the message
// already has appends to its arguments (so Generate's response holds whole
// calls, and a stream message one entry per call it touches).
template <typename Proto>
void AddToolCalls(const std::vector<chat::ToolCall>& pieces, Proto* out) {
  for (const chat::ToolCall& c : pieces) {
    lumen::v1::ToolCall* call = nullptr;
    for (int i = out->tool_calls_size() - 1; i >= 0 && call == nullptr; --i) {
      if (out->tool_calls(i).index() == static_cast<uint32_t>(c.index))
        call = out->mutable_tool_calls(i);
    }
    if (call == nullptr) {
      call = out->add_tool_calls();
      call->set_index(c.index);
      call->set_id(c.id);
      call->set_name(c.name);
    }
    call->mutable_arguments_json()->append(c.arguments);
  }
}

// The text of a delta as the response carries it: with tools, call markup
// becomes tool_calls (its name once certain, then its arguments as they
// grow, as HTTP's deltas do); the end of the output flushes what was held
// back.
template <typename Proto>
void AddText(std::optional<ToolCallOutput>& tools,
             const engine::GenerationDelta& d, Proto* out) {
  if (!tools) {
    out->mutable_text()->append(d.text);
    return;
  }
  chat::ParsedOutput parsed = tools->Push(d.text);
  out->mutable_text()->append(parsed.content);
  AddToolCalls(parsed.tool_calls, out);
  if (!d.finished) return;
  parsed = tools->Finish();
  out->mutable_text()->append(parsed.content);
  AddToolCalls(parsed.tool_calls, out);
}

// What the unary and the streaming reactor share. The reactor is owned by a
// shared_ptr (`self_`, dropped in OnDone) so that the output thread's
// notifier, which holds it weakly, can never run on a deleted reactor; only
// the side that marks the call finished calls Finish.
template <class Reactor>
class GenerateReactorBase : public Reactor, public GenerateSink {
 public:
  // The stream the engine's output stage writes; its notifier pumps output
  // to the wire.
  template <class Derived>
  static std::shared_ptr<Derived> Attach(std::shared_ptr<Derived> r,
                                         grpc::CallbackServerContext* ctx) {
    r->self_ = r;
    r->ctx_ = ctx;
    r->stream_ = std::make_shared<engine::RequestStream>();
    std::weak_ptr<Derived> weak = r;
    r->stream_->SetNotifier([weak] {
      if (auto strong = weak.lock()) strong->Pump();
    });
    return r;
  }

  void OnAccepted(GenerateStart start) final {
    // Runs on an executor thread for RAG/constraint requests: once mu_ is
    // released the output thread may finish the call and OnDone drop self_,
    // so this call keeps the reactor alive itself (taken before acceptance,
    // when nothing can have finished the call yet).
    std::shared_ptr<GenerateReactorBase> keep;
    engine::Engine* abort = nullptr;
    uint64_t id = 0;
    {
      absl::MutexLock lock(&mu_);
      keep = self_;
      start_ = std::move(start);
      accepted_ = true;
      if (start_.tool_format) tool_output_.emplace(*start_.tool_format);
      if (cancelled_) {
        abort = start_.engine;
        id = start_.id;
      }
      Accepted();
    }
    if (abort) abort->Abort(id);
    Pump();
  }
  void OnRejected(absl::Status status) final {
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
    }
    // A quota's hint for clients, as HTTP's Retry-After.
    if (auto seconds = RetryAfterOf(status))
      ctx_->AddTrailingMetadata("retry-after", absl::StrCat(*seconds));
    this->Finish(ToGrpc(status));
  }
  void OnCancel() override {
    engine::Engine* abort = nullptr;
    uint64_t id = 0;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (accepted_ && !finished_) {
        abort = start_.engine;
        id = start_.id;
      }
    }
    if (abort) abort->Abort(id);
  }
  void OnDone() override { self_.reset(); }  // may delete this

  virtual void Pump() = 0;
  const std::shared_ptr<engine::RequestStream>& stream() const {
    return stream_;
  }

 protected:
  // With mu_ held, right after acceptance.
  virtual void Accepted() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}

  absl::Mutex mu_;
  GenerateStart start_ ABSL_GUARDED_BY(mu_);
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish issued
  // The request offered tools: its output's calls (set on acceptance).
  std::optional<ToolCallOutput> tool_output_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<engine::RequestStream> stream_;
  grpc::CallbackServerContext* ctx_ = nullptr;  // valid until OnDone

 private:
  std::shared_ptr<GenerateReactorBase> self_;
};

// Generate: accumulates the output, finishes on the last delta.
class UnaryReactor final
    : public GenerateReactorBase<grpc::ServerUnaryReactor> {
 public:
  UnaryReactor(GenerateResponse* response, bool return_ids)
      : response_(response), return_ids_(return_ids) {}

  void Pump() override {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (!accepted_ || finished_) return;
      engine::GenerationDelta d;
      while (!finished_ && stream_->Take(&d)) {
        AddText(tool_output_, d, response_);
        if (return_ids_) {
          for (int32_t id : d.token_ids) response_->add_token_ids(id);
        }
        FillLogprobs(d.logprobs, *start_.tokenizer, response_);
        if (d.finished) {
          finished_ = true;
          FillFinal(d, start_.retrieval_seconds, tool_output_, response_);
          status = d.error;
        }
      }
      if (!finished_) return;
    }
    Finish(ToGrpc(status));
  }

 private:
  void Accepted() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    response_->set_id(absl::StrCat("req-", start_.id));
    response_->set_model(start_.model);
    for (const auto& h : start_.citations)
      ToProto(h, response_->add_citations());
  }

  GenerateResponse* const response_;
  const bool return_ids_;
};

// GenerateStream: the citations first (RAG), then one message per write.
class StreamReactor final
    : public GenerateReactorBase<
          grpc::ServerWriteReactor<GenerateStreamResponse>> {
 public:
  StreamReactor(bool return_ids, bool rag)
      : return_ids_(return_ids), rag_(rag) {}

  void OnWriteDone(bool ok) override {
    engine::Engine* abort = nullptr;
    uint64_t id = 0;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      // The client is gone: abort, but keep draining, so that the final
      // delta still reaches Finish and the call completes.
      if (!ok && !finished_) {
        abort = start_.engine;
        id = start_.id;
      }
    }
    if (abort) abort->Abort(id);
    Pump();
  }

  void Pump() override {
    enum { kWrite, kFinishError, kWriteAndFinish } action;
    grpc::Status error;
    {
      absl::MutexLock lock(&mu_);
      if (!accepted_ || finished_ || writing_) return;
      msg_.Clear();
      msg_.set_id(absl::StrCat("req-", start_.id));
      if (rag_ && !citations_sent_) {
        // The retrieval event: the passages before any token.
        citations_sent_ = true;
        for (const auto& h : start_.citations) ToProto(h, msg_.add_citations());
        action = kWrite;
      } else {
        engine::GenerationDelta d;
        // Deltas whose text is all held back (possible call markup) and
        // that carry nothing else make no message.
        do {
          if (!stream_->Take(&d)) return;
          AddText(tool_output_, d, &msg_);
          if (return_ids_) {
            for (int32_t t : d.token_ids) msg_.add_token_ids(t);
          }
          FillLogprobs(d.logprobs, *start_.tokenizer, &msg_);
        } while (!d.finished && msg_.text().empty() &&
                 msg_.tool_calls_size() == 0 && msg_.token_ids_size() == 0 &&
                 msg_.logprobs_size() == 0);
        if (!d.finished) {
          action = kWrite;
        } else if (!d.error.ok()) {
          error = ToGrpc(d.error);
          action = kFinishError;
        } else {
          FillFinal(d, start_.retrieval_seconds, tool_output_, &msg_);
          for (const auto& h : start_.citations)
            ToProto(h, msg_.add_citations());
          action = kWriteAndFinish;
        }
      }
      // The message goes to gRPC under mu_: gRPC serializes it inside
      // StartWrite, so the next Pump (which takes mu_) cannot change it
      // before that, and ThreadSanitizer sees the order. Safe because
      // gRPC 1.51 never runs OnWriteDone inline (write callbacks are not
      // inlineable) and a finish only schedules OnDone, on another thread.
      if (action == kWrite) {
        writing_ = true;
        StartWrite(&msg_);
        return;
      }
      finished_ = true;
      if (action == kWriteAndFinish) {
        StartWriteAndFinish(&msg_, grpc::WriteOptions(), grpc::Status::OK);
        return;
      }
    }
    Finish(error);
  }

 private:
  const bool return_ids_;
  const bool rag_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool citations_sent_ ABSL_GUARDED_BY(mu_) = false;
  GenerateStreamResponse msg_ ABSL_GUARDED_BY(mu_);  // the one being written
};

}  // namespace

grpc::ServerUnaryReactor* StartGenerate(GeneratePipeline* pipeline,
                                        grpc::CallbackServerContext* ctx,
                                        const GenerateRequest& request,
                                        GenerateResponse* response,
                                        const absl::StatusOr<Caller>& caller) {
  auto r = UnaryReactor::Attach(
      std::make_shared<UnaryReactor>(response, request.return_token_ids()),
      ctx);
  if (!caller.ok()) {
    r->OnRejected(caller.status());
  } else {
    pipeline->Start(request, *caller, DeadlineOf(ctx), "grpc", r->stream(),
                    r.get());
  }
  return r.get();
}

grpc::ServerWriteReactor<GenerateStreamResponse>* StartGenerateStream(
    GeneratePipeline* pipeline, grpc::CallbackServerContext* ctx,
    const GenerateRequest& request, const absl::StatusOr<Caller>& caller) {
  auto r = StreamReactor::Attach(
      std::make_shared<StreamReactor>(request.return_token_ids(),
                                      request.rag().collections_size() > 0),
      ctx);
  if (!caller.ok()) {
    r->OnRejected(caller.status());
  } else {
    pipeline->Start(request, *caller, DeadlineOf(ctx), "grpc", r->stream(),
                    r.get());
  }
  return r.get();
}

}  // namespace lumen::server
