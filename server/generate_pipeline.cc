#include "server/generate_pipeline.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/constrained/constraint_cache.h"
#include "server/adapter_registry.h"
#include "server/metrics.h"

namespace lumen::server {

struct GeneratePipeline::Call {
  lumen::v1::GenerateRequest request;
  Caller caller;
  bool admitted = false;  // holds one of the key's concurrent slots
  std::optional<engine::SteadyTime> deadline;
  std::string api;
  std::shared_ptr<engine::RequestStream> stream;
  ServedModel* model = nullptr;
  engine::SteadyTime arrival;
};

GeneratePipeline::GeneratePipeline(ModelRegistry* models,
                                   const AdapterRegistry* adapters,
                                   retrieval::KnowledgeStore* knowledge,
                                   Executor* executor, Metrics* metrics,
                                   PipelineOptions options)
    : models_(models),
      adapters_(adapters),
      rag_(knowledge ? std::make_unique<retrieval::RagRetriever>(knowledge)
                     : nullptr),
      executor_(executor),
      metrics_(metrics),
      options_(std::move(options)) {}

absl::Status GeneratePipeline::Rejected(const std::string& model,
                                        const std::string& api,
                                        absl::Status status) const {
  if (metrics_) metrics_->CountRejected(model, api, status.code());
  return status;
}

void GeneratePipeline::Start(lumen::v1::GenerateRequest request,
                             const Caller& caller,
                             std::optional<engine::SteadyTime> deadline,
                             std::string api,
                             std::shared_ptr<engine::RequestStream> stream,
                             GenerateSink* sink) {
  auto call = std::make_shared<Call>();
  call->arrival = std::chrono::steady_clock::now();
  call->request = std::move(request);
  call->caller = caller;
  call->deadline = deadline;
  call->api = std::move(api);
  call->stream = std::move(stream);
  auto model = models_->Find(call->request.model());
  // Unknown model names stay out of metric labels: labels must be bounded.
  if (!model.ok()) {
    return sink->OnRejected(Rejected("unknown", call->api, model.status()));
  }
  call->model = *model;
  if (absl::Status s = ValidateGenerateRequest(call->request, options_.limits);
      !s.ok()) {
    return sink->OnRejected(Rejected(call->model->name, call->api, s));
  }
  if (call->caller.quota) {
    const lumen::v1::SamplingParams& sp = call->request.sampling();
    std::string limit;
    absl::Status s = call->caller.quota->Admit(
        sp.has_max_tokens() ? sp.max_tokens() : 128, &limit);
    if (!s.ok()) {
      if (metrics_) metrics_->CountQuotaRejection(call->caller.tenant, limit);
      return sink->OnRejected(Rejected(call->model->name, call->api, s));
    }
    call->admitted = true;
  }
  const bool blocking = call->request.rag().collections_size() > 0 ||
                        ConstraintOf(call->request.sampling()).has_value() ||
                        !call->request.tools_json().empty();
  auto finish = [this, call, sink] {
    absl::StatusOr<GenerateStart> started = Run(*call);
    if (started.ok()) {
      sink->OnAccepted(std::move(*started));
    } else {
      ReleaseUnsubmitted(*call);
      sink->OnRejected(
          Rejected(call->model->name, call->api, started.status()));
    }
  };
  if (!blocking) return finish();
  // Retrieval and constraint compilation block or take milliseconds.
  if (absl::Status s = executor_->Post(finish); !s.ok()) {
    ReleaseUnsubmitted(*call);
    sink->OnRejected(Rejected(call->model->name, call->api, s));
  }
}

absl::StatusOr<GenerateStart> GeneratePipeline::Run(Call& call) {
  const lumen::v1::GenerateRequest& req = call.request;
  ServedModel& model = *call.model;
  GenerateStart start;
  start.model = model.name;
  std::vector<retrieval::ChunkHit> passages;
  if (std::optional<RagQuery> rag = RagQueryOf(req)) {
    if (!rag_) {
      return absl::FailedPreconditionError(
          "this lumend has no knowledge store");
    }
    const auto t0 = std::chrono::steady_clock::now();
    retrieval::RagRequest rr{rag->collections, rag->search,
                             req.rag().prompt_template()};
    ASSIGN_OR_RETURN(passages, rag_->Retrieve(call.caller, rr));
    start.retrieval_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (metrics_) metrics_->ObserveRetrieval(start.retrieval_seconds);
  }
  ModelContext context{model.name, model.tokenizer.get(),
                       model.engine->context_size(), model.chat_template.get()};
  ASSIGN_OR_RETURN(
      BuiltRequest built,
      BuildGenerateParams(req, context, std::move(passages), options_.limits));
  engine::GenerateParams& p = built.params;
  if (!req.adapter().empty()) {
    if (adapters_ == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "adapter '", req.adapter(), "' not found (no adapters are loaded)"));
    }
    ASSIGN_OR_RETURN(p.adapter, adapters_->Find(req.adapter(), model.name));
    p.adapter_name = req.adapter();
  }
  RETURN_IF_ERROR(SetOutputConstraint(req, *model.constraints, &built));
  start.tool_format = built.tool_format;
  if (call.caller.quota) {
    std::string limit;
    absl::Status s = call.caller.quota->CheckPrompt(
        static_cast<int64_t>(p.prompt_tokens.size()), &limit);
    if (!s.ok()) {
      call.caller.quota->CountRejection();
      if (metrics_) metrics_->CountQuotaRejection(call.caller.tenant, limit);
      return s;
    }
    // The output stage gives the slot back with the tokens generated.
    p.on_finished = [quota = call.caller.quota](const engine::Usage& u) {
      quota->Release(u.completion_tokens);
    };
  }
  p.deadline = call.deadline;
  p.cache_salt = options_.share_prefix_cache
                     ? std::string()
                     : absl::StrCat("tenant:", call.caller.tenant);
  p.api = call.api;
  p.arrival = call.arrival;
  start.id = next_id_.fetch_add(1);
  start.engine = model.engine.get();
  start.tokenizer = model.tokenizer.get();
  start.citations = std::move(built.citations);
  RETURN_IF_ERROR(model.engine->Submit(start.id, std::move(p), call.stream));
  call.admitted = false;  // the output stage releases it now
  return start;
}

void GeneratePipeline::ReleaseUnsubmitted(Call& call) {
  if (!call.admitted) return;
  call.admitted = false;
  call.caller.quota->Release(0);
}

}  // namespace lumen::server
