#include "server/admin_service.h"

#include <algorithm>
#include <chrono>

#include "absl/synchronization/mutex.h"
#include "server/reply.h"
#include "server/status_util.h"

namespace lumen::server {

AdminService::AdminService(ModelRegistry* registry, AdapterRegistry* adapters,
                           const Authenticator* auth, Executor* executor,
                           Metrics* metrics)
    : registry_(registry),
      adapters_(adapters),
      auth_(auth),
      executor_(executor),
      metrics_(metrics) {
  CheckParsing("GetStats", &AdminService::GetStats);
  CheckParsing("ListAdapters", &AdminService::ListAdapters);
  CheckParsing("LoadAdapter", &AdminService::LoadAdapter);
  CheckParsing("UnloadAdapter", &AdminService::UnloadAdapter);
  CheckedEveryMethod();
}

grpc::ServerUnaryReactor* AdminService::GetStats(
    grpc::CallbackServerContext* ctx, const lumen::v1::GetStatsRequest* request,
    lumen::v1::GetStatsResponse* response) {
  auto caller = auth_->Authenticate(ctx);
  if (!caller.ok()) return Reply(ctx, caller.status());
  for (const auto& q : auth_->Quotas()) {
    if (!caller->admin && q->tenant() != caller->tenant) continue;
    const QuotaUsage u = q->usage();
    const QuotaLimits l = q->limits();
    lumen::v1::KeyUsage* k = response->add_keys();
    k->set_tenant(q->tenant());
    k->set_key_fingerprint(q->fingerprint());
    k->set_requests(u.requests);
    k->set_generated_tokens(u.generated_tokens);
    k->set_concurrent(static_cast<uint32_t>(u.concurrent));
    k->set_rejections(u.rejections);
    k->set_requests_per_minute(l.requests_per_minute);
    k->set_tokens_per_minute(l.tokens_per_minute);
    k->set_concurrent_requests(static_cast<uint32_t>(l.concurrent_requests));
    k->set_max_prompt_tokens(static_cast<uint32_t>(l.max_prompt_tokens));
    k->set_max_tokens(static_cast<uint32_t>(l.max_tokens));
  }
  if (!request->model().empty()) {
    if (auto m = registry_->Find(request->model()); !m.ok())
      return Reply(ctx, m.status());
  }
  for (const auto& m : registry_->models()) {
    if (!request->model().empty() && m->name != request->model()) continue;
    const engine::EngineStats s = m->engine->Stats();
    lumen::v1::ModelStats* out = response->add_models();
    out->set_model(m->name);
    out->set_queue_depth(s.queue_depth);
    out->set_running(s.running);
    out->set_kv_blocks_total(s.kv_blocks_total);
    out->set_kv_blocks_free(s.kv_blocks_free);
    out->set_kv_blocks_used(s.kv_blocks_total - s.kv_blocks_free);
    out->set_kv_blocks_cached(s.kv_blocks_cached);
    out->set_prefix_cache_hit_tokens(s.prefix_cache_hit_tokens);
    out->set_prompt_tokens(s.prompt_tokens);
    out->set_generation_tokens(s.generation_tokens);
    out->set_steps(s.steps);
    out->set_preemptions(s.preemptions);
    out->set_requests_finished(s.requests_finished);
    out->set_block_size(m->engine->options().block_size);
    if (s.steps > 0) {
      out->set_mean_step_seconds(s.step_seconds_total / s.steps);
      out->set_mean_step_tokens(static_cast<double>(s.step_tokens_total) /
                                s.steps);
    }
    if (s.step_seconds_total > 0) {
      out->set_mean_forward_fraction(s.forward_seconds_total /
                                     s.step_seconds_total);
    }
    const engine::ModelConfig& c = m->engine->model().config();
    if (c.moe()) {
      std::vector<int64_t> counts;
      m->engine->model().ExpertTokenCounts(&counts);
      for (int64_t l = 0; l < c.n_layers; ++l) {
        lumen::v1::MoeLayerStats* layer = out->add_moe_layers();
        layer->set_layer(static_cast<uint32_t>(l));
        int64_t max = 0, sum = 0;
        for (int64_t e = 0; e < c.n_experts; ++e) {
          const int64_t n = counts[l * c.n_experts + e];
          layer->add_expert_tokens(n);
          max = std::max(max, n);
          sum += n;
        }
        if (sum > 0) {
          layer->set_imbalance(static_cast<double>(max) * c.n_experts / sum);
        }
      }
    }
  }
  return Reply(ctx, absl::OkStatus());
}

namespace {

void FillAdapter(const AdapterEntry& e, lumen::v1::AdapterInfo* out) {
  out->set_name(e.name);
  out->set_path(e.path);
  out->set_model(e.model);
  out->set_rank(static_cast<uint32_t>(e.adapter->max_rank()));
  out->set_alpha(e.adapter->alpha());
  out->set_targets(e.adapter->TargetSummary());
  out->set_parameters(e.adapter->num_parameters());
}

// Loading and unloading change what every tenant is served: admins only.
absl::Status RequireAdmin(const Authenticator* auth,
                          grpc::CallbackServerContext* ctx) {
  auto p = auth->Authenticate(ctx);
  if (!p.ok()) return p.status();
  if (!p->admin) {
    return absl::PermissionDeniedError(
        "loading and unloading adapters needs the admin role");
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::ListAdapters(
    grpc::CallbackServerContext* ctx, const lumen::v1::ListAdaptersRequest*,
    lumen::v1::ListAdaptersResponse* response) {
  if (auto p = auth_->Authenticate(ctx); !p.ok()) return Reply(ctx, p.status());
  for (const AdapterEntry& e : adapters_->List())
    FillAdapter(e, response->add_adapters());
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::LoadAdapter(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::LoadAdapterRequest* request,
    lumen::v1::LoadAdapterResponse* response) {
  if (absl::Status s = RequireAdmin(auth_, ctx); !s.ok()) return Reply(ctx, s);
  if (request->path().empty())
    return Reply(ctx, absl::InvalidArgumentError("path is required"));
  // Reading and validating the file blocks.
  return ReplyLater(
      ctx, executor_, [this, request, response]() -> absl::Status {
        auto entry =
            adapters_->Load(request->name(), request->path(), request->model());
        if (!entry.ok()) return entry.status();
        FillAdapter(*entry, response->mutable_adapter());
        return absl::OkStatus();
      });
}

namespace {

// UnloadAdapter returns when no request holds the adapter any more: the
// registry calls back (from whichever thread drops the last reference), or
// the client gives up first. Whichever comes first finishes the call.
class UnloadReactor final : public grpc::ServerUnaryReactor {
 public:
  UnloadReactor(lumen::v1::UnloadAdapterResponse* response, Metrics* metrics,
                std::string name)
      : state_(std::make_shared<State>()) {
    state_->reactor = this;
    state_->response = response;
    state_->metrics = metrics;
    state_->name = std::move(name);
  }
  // The callback for AdapterRegistry::Remove; it may outlive the reactor.
  std::function<void(const std::string&)> OnReleased() {
    return [state = state_](const std::string& model) {
      // Its series go once nothing can add to them.
      if (state->metrics) state->metrics->ForgetAdapter(model, state->name);
      state->FinishOnce(grpc::Status::OK);
    };
  }
  void Fail(const absl::Status& s) { state_->FinishOnce(ToGrpc(s)); }
  void OnCancel() override {
    state_->FinishOnce(grpc::Status(
        grpc::StatusCode::CANCELLED,
        "unload was cancelled while requests still used the adapter; it is "
        "unloaded once they finish"));
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
    UnloadReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    bool finished ABSL_GUARDED_BY(mu) = false;
    lumen::v1::UnloadAdapterResponse* response = nullptr;
    Metrics* metrics = nullptr;
    std::string name;
    const std::chrono::steady_clock::time_point start =
        std::chrono::steady_clock::now();
    void FinishOnce(const grpc::Status& status) {
      UnloadReactor* r = nullptr;
      {
        absl::MutexLock lock(&mu);
        if (finished || reactor == nullptr) return;
        finished = true;
        r = reactor;
        response->set_waited_seconds(
            std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                          start)
                .count());
      }
      // Outside the lock: OnDone (which takes it) may follow at once. The
      // reactor lives until OnDone, which needs this Finish.
      r->Finish(status);
    }
  };
  std::shared_ptr<State> state_;
};

}  // namespace

grpc::ServerUnaryReactor* AdminService::UnloadAdapter(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::UnloadAdapterRequest* request,
    lumen::v1::UnloadAdapterResponse* response) {
  if (absl::Status s = RequireAdmin(auth_, ctx); !s.ok()) return Reply(ctx, s);
  auto* reactor = new UnloadReactor(response, metrics_, request->name());
  if (absl::Status s =
          adapters_->Remove(request->name(), reactor->OnReleased());
      !s.ok()) {
    reactor->Fail(s);
  }
  return reactor;
}

}  // namespace lumen::server
