#include "server/inference_service.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "server/adapter_registry.h"
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

absl::StatusOr<InferenceService::Prepared> InferenceService::Prepare(
    const GenerateRequest& req, const ServedModel& model,
    const Principal& principal,
    std::optional<engine::SteadyTime> deadline) const {
  Prepared prepared;
  engine::GenerateParams& p = prepared.params;
  const lumen::v1::SamplingParams& s = req.sampling();
  if (!req.adapter().empty()) {
    if (options_.adapters == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "adapter '", req.adapter(), "' not found (no adapters are loaded)"));
    }
    ASSIGN_OR_RETURN(p.adapter,
                     options_.adapters->Find(req.adapter(), model.name));
    p.adapter_name = req.adapter();
  }
  if (s.has_max_tokens() && s.max_tokens() == 0) {
    return absl::InvalidArgumentError(
        "sampling.max_tokens must be >= 1 (got 0)");
  }
  p.max_tokens =
      s.has_max_tokens() ? static_cast<int32_t>(s.max_tokens()) : 128;
  const float temperature = s.has_temperature() ? s.temperature() : 1.0f;
  if (!(temperature >= 0.0f) || temperature > 100.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.temperature must be in [0, 100] (got ", temperature, ")"));
  }
  const float top_p = s.has_top_p() ? s.top_p() : 1.0f;
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.top_p must be in (0, 1] (got ", top_p, ")"));
  }
  if (!(s.min_p() >= 0.0f && s.min_p() <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.min_p must be in [0, 1] (got ", s.min_p(), ")"));
  }
  const float rep = s.has_repetition_penalty() ? s.repetition_penalty() : 1.0f;
  if (!(rep > 0.0f && rep <= 10.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.repetition_penalty must be in (0, 10] (got ", rep, ")"));
  }
  for (auto [name, v] :
       {std::pair<const char*, float>{"presence_penalty", s.presence_penalty()},
        {"frequency_penalty", s.frequency_penalty()}}) {
    if (!(v >= -2.0f && v <= 2.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling.", name, " must be in [-2, 2] (got ", v, ")"));
    }
  }
  if (s.logprobs() > 20) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.logprobs must be at most 20 (got ", s.logprobs(), ")"));
  }
  if (s.stop_size() > 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.stop has ", s.stop_size(), " strings; at most 16"));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty() || s.stop(i).size() > 256) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling.stop[", i, "] must be 1 to 256 bytes"));
    }
    p.stop.push_back(s.stop(i));
  }
  p.sampling.temperature = temperature;
  p.sampling.top_k = static_cast<int32_t>(s.top_k());
  p.sampling.top_p = top_p;
  p.sampling.min_p = s.min_p();
  p.sampling.repetition_penalty = rep;
  p.sampling.presence_penalty = s.presence_penalty();
  p.sampling.frequency_penalty = s.frequency_penalty();
  if (s.has_seed()) p.sampling.seed = s.seed();
  p.logprobs = static_cast<int32_t>(s.logprobs());
  p.ignore_eos = s.ignore_eos();
  p.deadline = deadline;

  const engine::Tokenizer& tok = *model.tokenizer;
  const int sources = !req.prompt().empty() + (req.messages_size() > 0) +
                      (req.prompt_token_ids_size() > 0);
  if (sources == 0) {
    return absl::InvalidArgumentError(
        "prompt is empty: set prompt, messages or prompt_token_ids");
  }
  if (sources > 1) {
    return absl::InvalidArgumentError(
        "set only one of prompt, messages and prompt_token_ids");
  }
  // RAG: retrieve passages and put them into the prompt.
  std::string prompt = req.prompt();
  std::vector<engine::ChatTurn> turns;
  for (const auto& m : req.messages()) turns.push_back({m.role(), m.content()});
  if (req.rag().collections_size() > 0) {
    if (options_.knowledge == nullptr) {
      return absl::FailedPreconditionError(
          "this lumend has no knowledge store");
    }
    if (req.prompt_token_ids_size() > 0) {
      return absl::InvalidArgumentError(
          "rag needs a text prompt or messages, not prompt_token_ids");
    }
    std::string question = prompt;
    for (const auto& t : turns) {
      if (t.role == "user") question = t.content;
    }
    retrieval::SearchRequest sr;
    sr.query = question;
    sr.top_k = req.rag().top_k() ? static_cast<int>(req.rag().top_k()) : 4;
    sr.min_score = req.rag().min_score();
    sr.filter = std::map<std::string, std::string>(req.rag().filter().begin(),
                                                   req.rag().filter().end());
    switch (req.rag().mode()) {
      case lumen::v1::SEARCH_MODE_VECTOR:
        sr.mode = retrieval::SearchMode::kVector;
        break;
      case lumen::v1::SEARCH_MODE_KEYWORD:
        sr.mode = retrieval::SearchMode::kKeyword;
        break;
      default:
        sr.mode = retrieval::SearchMode::kHybrid;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto hits =
        RetrieveForRag(options_.knowledge, principal,
                       std::vector<std::string>(req.rag().collections().begin(),
                                                req.rag().collections().end()),
                       sr);
    if (!hits.ok()) return hits.status();
    prepared.retrieval_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (options_.metrics)
      options_.metrics->ObserveRetrieval(prepared.retrieval_seconds);
    std::string passages;
    for (size_t i = 0; i < hits->size(); ++i) {
      const retrieval::ChunkHit& h = (*hits)[i];
      absl::StrAppend(&passages, "[", i + 1, "] ",
                      h.title.empty() ? h.document_id : h.title,
                      h.source.empty() ? "" : absl::StrCat(" (", h.source, ")"),
                      "\n", h.text, "\n\n");
    }
    const std::string tmpl =
        req.rag().prompt_template().empty()
            ? "Use the numbered passages below to answer. Cite the passages "
              "you use by number, "
              "like [1].\n\n{passages}Question: {question}\nAnswer:"
            : req.rag().prompt_template();
    const std::string rendered = absl::StrReplaceAll(
        tmpl, {{"{passages}", passages}, {"{question}", question}});
    if (turns.empty()) {
      prompt = rendered;
    } else if (turns[0].role == "system") {
      turns[0].content = absl::StrCat(turns[0].content, "\n\n", rendered);
    } else {
      // Chat: the passages and the instruction become the system message.
      turns.insert(turns.begin(), engine::ChatTurn{"system", rendered});
    }
    prepared.citations = std::move(*hits);
  }

  if (req.messages_size() > 0) {
    const std::string& tmpl = tok.vocab().chat_template;
    absl::StatusOr<engine::ChatFamily> family =
        options_.chat_template ? *options_.chat_template
        : tmpl.empty()
            ? absl::StatusOr<
                  engine::ChatFamily>(absl::InvalidArgumentError(absl::StrCat(
                  "model '", model.name,
                  "' has no chat template; send a prompt, or start lumend with "
                  "--chat-template NAME")))
            : engine::DetectChatFamily(tmpl);
    if (!family.ok()) return family.status();
    auto text = engine::RenderChat(*family, tmpl, turns);
    if (!text.ok()) return text.status();
    p.prompt_tokens =
        tok.Encode(*text, /*add_special=*/false, /*parse_special=*/true);
    const int32_t bos = tok.vocab().bos;
    if (tok.vocab().add_bos && bos >= 0 &&
        (p.prompt_tokens.empty() || p.prompt_tokens[0] != bos)) {
      p.prompt_tokens.insert(p.prompt_tokens.begin(), bos);
    }
  } else if (req.prompt_token_ids_size() > 0) {
    const int32_t n_vocab = tok.vocab().size();
    for (int i = 0; i < req.prompt_token_ids_size(); ++i) {
      const int32_t id = req.prompt_token_ids(i);
      if (id < 0 || id >= n_vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("prompt_token_ids[", i, "] = ", id,
                         " is outside the vocabulary of ", n_vocab));
      }
      p.prompt_tokens.push_back(id);
    }
  } else {
    p.prompt_tokens =
        tok.Encode(prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  const int64_t ctx = model.engine->context_size();
  if (static_cast<int64_t>(p.prompt_tokens.size()) >= ctx) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt of ", p.prompt_tokens.size(),
        " tokens is longer than the context of ", ctx, "  tokens (ctx-size)"));
  }
  return prepared;
}

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
