#include "server/admin_service.h"

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
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ListAdapters(
    grpc::CallbackServerContext* ctx, const lumen::v1::ListAdaptersRequest*,
    lumen::v1::ListAdaptersResponse*) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);  // LoRA adapters are not implemented yet
  return reactor;
}

}  // namespace lumen::server
