#include "server/admin_service.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "server/status_util.h"

namespace lumen::server {

grpc::ServerUnaryReactor* AdminService::GetStats(
    grpc::CallbackServerContext* ctx, const lumen::v1::GetStatsRequest* request,
    lumen::v1::GetStatsResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (auto p = auth_->Authenticate(ctx); !p.ok()) {
    reactor->Finish(ToGrpc(p.status()));
    return reactor;
  }
  if (!request->model().empty()) {
    if (auto m = registry_->Find(request->model()); !m.ok()) {
      reactor->Finish(ToGrpc(m.status()));
      return reactor;
    }
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
    out->set_block_size(16);
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
  reactor->Finish(grpc::Status::OK);
  return reactor;
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
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (auto p = auth_->Authenticate(ctx); !p.ok()) {
    reactor->Finish(ToGrpc(p.status()));
    return reactor;
  }
  for (const AdapterEntry& e : adapters_->List())
    FillAdapter(e, response->add_adapters());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::LoadAdapter(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::LoadAdapterRequest* request,
    lumen::v1::LoadAdapterResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::Status s = RequireAdmin(auth_, ctx); !s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  if (request->path().empty()) {
    reactor->Finish(ToGrpc(absl::InvalidArgumentError("path is required")));
    return reactor;
  }
  auto entry =
      adapters_->Load(request->name(), request->path(), request->model());
  if (!entry.ok()) {
    reactor->Finish(ToGrpc(entry.status()));
    return reactor;
  }
  FillAdapter(*entry, response->mutable_adapter());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::UnloadAdapter(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::UnloadAdapterRequest* request,
    lumen::v1::UnloadAdapterResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::Status s = RequireAdmin(auth_, ctx); !s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  auto removed = adapters_->Remove(request->name());
  if (!removed.ok()) {
    reactor->Finish(ToGrpc(removed.status()));
    return reactor;
  }
  // Wait off the gRPC thread for the requests still holding the adapter;
  // their engines drop it when they finish (or are cancelled).
  std::thread([reactor, response, handle = removed->handle, ctx,
               metrics = metrics_, name = request->name(),
               model = removed->model] {
    const auto start = std::chrono::steady_clock::now();
    while (!handle.expired() && !ctx->IsCancelled()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (metrics != nullptr) metrics->ForgetAdapter(model, name);
    response->set_waited_seconds(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
    reactor->Finish(handle.expired()
                        ? grpc::Status::OK
                        : grpc::Status(grpc::StatusCode::CANCELLED,
                                       "unload was cancelled while requests "
                                       "still used the adapter; it is "
                                       "unloaded once they finish"));
  }).detach();
  return reactor;
}

}  // namespace lumen::server
