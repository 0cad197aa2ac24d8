#include "server/inference_service.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/knowledge_service.h"
#include "server/metrics.h"
#include "server/status_util.h"

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

template <typename Proto>
void FillLogprobs(const std::vector<engine::LogprobEntry>& entries,
                  Proto* out) {
  for (const engine::LogprobEntry& e : entries) {
    lumen::v1::TokenLogprob* lp = out->add_logprobs();
    lp->set_token_id(e.token_id);
    lp->set_token(e.token);
    lp->set_logprob(e.logprob);
    for (const engine::TokenLogprob& t : e.top) {
      lumen::v1::TopLogprob* top = lp->add_top();
      top->set_token_id(t.token);
      top->set_logprob(t.logprob);
    }
  }
}

template <typename Proto>
void FillFinal(const engine::GenerationDelta& d, Proto* out) {
  out->set_finish_reason(d.finish_reason);
  out->mutable_usage()->set_prompt_tokens(d.usage.prompt_tokens);
  out->mutable_usage()->set_completion_tokens(d.usage.completion_tokens);
  out->mutable_usage()->set_cached_prompt_tokens(d.usage.cached_prompt_tokens);
  lumen::v1::Timings* t = out->mutable_timings();
  t->set_queue_seconds(d.timings.queue_seconds);
  t->set_time_to_first_token_seconds(d.timings.time_to_first_token_seconds);
  t->set_total_seconds(d.timings.total_seconds);
  t->set_time_per_output_token_seconds(d.timings.time_per_output_token_seconds);
}

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx,
                                const absl::Status& s) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpc(s));
  return r;
}

// Unary Generate: accumulates the stream and finishes on its last delta.
class GenerateReactor : public grpc::ServerUnaryReactor {
 public:
  GenerateReactor(engine::Engine* engine, uint64_t id, std::string model,
                  bool return_ids, GenerateResponse* response)
      : state_(std::make_shared<State>()), engine_(engine), id_(id) {
    state_->reactor = this;
    state_->response = response;
    state_->return_ids = return_ids;
    response->set_id(absl::StrCat("req-", id));
    response->set_model(std::move(model));
  }

  std::shared_ptr<engine::RequestStream> MakeStream() {
    auto stream = std::make_shared<engine::RequestStream>();
    std::weak_ptr<engine::RequestStream> weak = stream;
    stream->SetNotifier([state = state_, weak] {
      auto s = weak.lock();
      if (s) state->Drain(s.get());
    });
    return stream;
  }

  void Fail(const absl::Status& s) { Finish(ToGrpc(s)); }
  void SetRetrievalSeconds(double s) { state_->retrieval_seconds = s; }
  void OnCancel() override {
    if (engine_) engine_->Abort(id_);
  }
  void OnDone() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = nullptr;
    }
    delete this;
  }

 private:
  struct State {
    absl::Mutex mu;
    GenerateReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    GenerateResponse* response = nullptr;
    bool return_ids = false;
    double retrieval_seconds = 0;
    bool done = false;
    void Drain(engine::RequestStream* stream) {
      GenerateReactor* finish = nullptr;
      absl::Status status;
      {
        absl::MutexLock lock(&mu);
        engine::GenerationDelta d;
        while (!done && stream->Take(&d)) {
          response->mutable_text()->append(d.text);
          if (return_ids) {
            for (int32_t id : d.token_ids) response->add_token_ids(id);
          }
          FillLogprobs(d.logprobs, response);
          if (d.finished) {
            done = true;
            FillFinal(d, response);
            response->mutable_timings()->set_retrieval_seconds(
                retrieval_seconds);
            finish = reactor;
            status = d.error;
          }
        }
      }
      // Outside the lock: OnDone (which takes it) may follow Finish at once.
      if (finish) finish->Finish(ToGrpc(status));
    }
  };
  std::shared_ptr<State> state_;
  engine::Engine* engine_;
  uint64_t id_;
};

// GenerateStream: one write in flight; pending deltas coalesce meanwhile.
class StreamReactor : public grpc::ServerWriteReactor<GenerateStreamResponse> {
 public:
  StreamReactor(engine::Engine* engine, uint64_t id, bool return_ids)
      : state_(std::make_shared<State>()), engine_(engine), id_(id) {
    state_->reactor = this;
    state_->return_ids = return_ids;
    state_->id = absl::StrCat("req-", id);
  }

  std::shared_ptr<engine::RequestStream> MakeStream() {
    stream_ = std::make_shared<engine::RequestStream>();
    std::weak_ptr<engine::RequestStream> weak = stream_;
    stream_->SetNotifier([state = state_, weak] {
      auto s = weak.lock();
      if (s) state->MaybeWrite(s.get());
    });
    return stream_;
  }

  void Fail(const absl::Status& s) { Finish(ToGrpc(s)); }
  // Writes the retrieval event (citations, no text) before any token.
  void SendCitations(std::vector<lumen::v1::Citation> citations,
                     double seconds) {
    {
      absl::MutexLock lock(&state_->mu);
      state_->citations = std::move(citations);
      state_->retrieval_seconds = seconds;
      state_->in_flight = true;
      state_->msg.Clear();
      state_->msg.set_id(state_->id);
      for (const auto& c : state_->citations) *state_->msg.add_citations() = c;
    }
    StartWrite(&state_->msg);
  }
  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->in_flight = false;
    }
    // On a failed write (client gone) abort, but keep draining: the final
    // delta must still reach Finish so that the RPC completes.
    if (!ok && engine_) engine_->Abort(id_);
    state_->MaybeWrite(stream_.get());
  }
  void OnCancel() override {
    if (engine_) engine_->Abort(id_);
  }
  void OnDone() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = nullptr;
    }
    delete this;
  }

 private:
  struct State {
    absl::Mutex mu;
    StreamReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    bool in_flight ABSL_GUARDED_BY(mu) = false;
    bool done ABSL_GUARDED_BY(mu) = false;
    bool return_ids = false;
    std::string id;
    GenerateStreamResponse msg;                  // the message being written
    std::vector<lumen::v1::Citation> citations;  // RAG passages
    double retrieval_seconds = 0;

    void MaybeWrite(engine::RequestStream* stream) {
      enum { kNone, kWrite, kFinishError, kWriteAndFinish } action = kNone;
      StreamReactor* r = nullptr;
      grpc::Status error;
      {
        absl::MutexLock lock(&mu);
        if (in_flight || done || reactor == nullptr) return;
        engine::GenerationDelta d;
        if (!stream->Take(&d)) return;
        r = reactor;
        msg.Clear();
        msg.set_id(id);
        msg.set_text(d.text);
        if (return_ids) {
          for (int32_t t : d.token_ids) msg.add_token_ids(t);
        }
        FillLogprobs(d.logprobs, &msg);
        if (!d.finished) {
          in_flight = true;
          action = kWrite;
        } else {
          done = true;
          if (!d.error.ok()) {
            error = ToGrpc(d.error);
            action = kFinishError;
          } else {
            FillFinal(d, &msg);
            msg.mutable_timings()->set_retrieval_seconds(retrieval_seconds);
            for (const auto& c : citations) *msg.add_citations() = c;
            action = kWriteAndFinish;
          }
        }
      }
      // Outside the lock: completions may run inline and take it.
      if (action == kWrite) r->StartWrite(&msg);
      if (action == kFinishError) r->Finish(error);
      if (action == kWriteAndFinish) {
        r->StartWriteAndFinish(&msg, grpc::WriteOptions(), grpc::Status::OK);
      }
    }
  };
  std::shared_ptr<State> state_;
  std::shared_ptr<engine::RequestStream> stream_;
  engine::Engine* engine_;
  uint64_t id_;
};

}  // namespace

absl::Status InferenceService::Rejected(
    const absl::StatusOr<ServedModel*>& model, absl::Status status) const {
  // Unknown model names stay out of the label: labels must be bounded.
  if (options_.metrics) {
    options_.metrics->CountRejected(model.ok() ? (*model)->name : "unknown",
                                    status.code());
  }
  return status;
}

grpc::ServerUnaryReactor* InferenceService::Generate(
    grpc::CallbackServerContext* ctx, const GenerateRequest* request,
    GenerateResponse* response) {
  auto principal = options_.auth->Authenticate(ctx);
  if (!principal.ok()) return Reply(ctx, principal.status());
  auto model = registry_->Find(request->model());
  if (!model.ok()) return Reply(ctx, Rejected(model, model.status()));
  auto params = Prepare(*request, **model, *principal, DeadlineOf(ctx));
  if (!params.ok()) return Reply(ctx, Rejected(model, params.status()));
  const uint64_t id = next_id_.fetch_add(1);
  for (const auto& h : params->citations) ToProto(h, response->add_citations());
  auto* reactor =
      new GenerateReactor((*model)->engine.get(), id, (*model)->name,
                          request->return_token_ids(), response);
  reactor->SetRetrievalSeconds(params->retrieval_seconds);
  auto stream = reactor->MakeStream();
  if (absl::Status s =
          (*model)->engine->Submit(id, std::move(params->params), stream);
      !s.ok()) {
    reactor->Fail(Rejected(model, s));
  }
  return reactor;
}

grpc::ServerWriteReactor<GenerateStreamResponse>*
InferenceService::GenerateStream(grpc::CallbackServerContext* ctx,
                                 const GenerateRequest* request) {
  auto principal = options_.auth->Authenticate(ctx);
  auto model = registry_->Find(request->model());
  absl::StatusOr<Prepared> params =
      !principal.ok() ? absl::StatusOr<Prepared>(principal.status())
      : model.ok()    ? Prepare(*request, **model, *principal, DeadlineOf(ctx))
                      : absl::StatusOr<Prepared>(model.status());
  const uint64_t id = next_id_.fetch_add(1);
  auto* reactor =
      new StreamReactor(model.ok() ? (*model)->engine.get() : nullptr, id,
                        request->return_token_ids());
  if (!params.ok()) {
    reactor->Fail(Rejected(model, params.status()));
    return reactor;
  }
  auto stream = reactor->MakeStream();
  if (request->rag().collections_size() > 0) {
    std::vector<lumen::v1::Citation> citations;
    for (const auto& h : params->citations)
      ToProto(h, &citations.emplace_back());
    reactor->SendCitations(std::move(citations), params->retrieval_seconds);
  }
  if (absl::Status s =
          (*model)->engine->Submit(id, std::move(params->params), stream);
      !s.ok()) {
    reactor->Fail(Rejected(model, s));
  }
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(
    grpc::CallbackServerContext* ctx, const lumen::v1::TokenizeRequest* request,
    lumen::v1::TokenizeResponse* response) {
  if (auto principal = options_.auth->Authenticate(ctx); !principal.ok()) {
    return Reply(ctx, principal.status());
  }
  auto model = registry_->Find(request->model());
  if (!model.ok()) return Reply(ctx, model.status());
  const engine::Tokenizer& tok = *(*model)->tokenizer;
  for (int32_t id : tok.Encode(request->text(), request->add_special(),
                               request->parse_special())) {
    response->add_token_ids(id);
    response->add_pieces(tok.TokenToPiece(id, true));
  }
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::DetokenizeRequest* request,
    lumen::v1::DetokenizeResponse* response) {
  if (auto principal = options_.auth->Authenticate(ctx); !principal.ok()) {
    return Reply(ctx, principal.status());
  }
  auto model = registry_->Find(request->model());
  if (!model.ok()) return Reply(ctx, model.status());
  const engine::Tokenizer& tok = *(*model)->tokenizer;
  std::vector<int32_t> ids(request->token_ids().begin(),
                           request->token_ids().end());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= tok.vocab().size()) {
      return Reply(ctx,
                   absl::InvalidArgumentError(absl::StrCat(
                       "token_ids[", i, "] = ", ids[i],
                       " is outside the vocabulary of ", tok.vocab().size())));
    }
  }
  response->set_text(tok.Decode(ids, request->render_special()));
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ListModels(
    grpc::CallbackServerContext* ctx, const lumen::v1::ListModelsRequest*,
    lumen::v1::ListModelsResponse* response) {
  if (auto principal = options_.auth->Authenticate(ctx); !principal.ok()) {
    return Reply(ctx, principal.status());
  }
  if (!registry_->ready())
    return Reply(ctx, absl::UnavailableError("models are still loading"));
  for (const auto& m : registry_->models()) {
    lumen::v1::ModelInfo* info = response->add_models();
    const engine::Transformer& t = m->engine->model();
    info->set_name(m->name);
    info->set_path(m->path);
    info->set_architecture(t.config().arch);
    info->set_parameters(m->parameters);
    info->set_weights(t.int8() ? "int8" : "f32");
    info->set_context_length(t.max_context());
    info->set_vocab_size(m->tokenizer->vocab().size());
    info->set_has_chat_template(!m->tokenizer->vocab().chat_template.empty());
    info->set_resident_bytes(t.resident_bytes().total());
  }
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::Embed(
    grpc::CallbackServerContext* ctx, const lumen::v1::EmbedRequest* request,
    lumen::v1::EmbedResponse* response) {
  if (auto principal = options_.auth->Authenticate(ctx); !principal.ok()) {
    return Reply(ctx, principal.status());
  }
  if (options_.embedder == nullptr) {
    return Reply(
        ctx,
        absl::FailedPreconditionError(
            "lumend has no embedding model (start it with --embedding-model)"));
  }
  if (request->texts_size() == 0 || request->texts_size() > 256) {
    return Reply(
        ctx, absl::InvalidArgumentError("texts must hold 1 to 256 strings"));
  }
  auto vecs = options_.embedder->Embed(std::vector<std::string>(
      request->texts().begin(), request->texts().end()));
  if (!vecs.ok()) return Reply(ctx, vecs.status());
  response->set_dim(options_.embedder->dim());
  for (const auto& v : *vecs) {
    auto* e = response->add_embeddings();
    e->mutable_values()->Add(v.begin(), v.end());
  }
  return Reply(ctx, absl::OkStatus());
}

}  // namespace lumen::server
