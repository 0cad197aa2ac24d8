#pragma once
// lumen.v1.Admin: statistics of every engine (queue, running, KV blocks,
// prefix cache, steps, MoE expert load) and LoRA adapter management.

#include "lumen/v1/admin.grpc.pb.h"
#include "server/adapter_registry.h"
#include "server/auth.h"
#include "server/executor.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/parse_checked_service.h"

namespace lumen::server {

class AdminService final : public ParseCheckedService<lumen::v1::Admin> {
 public:
  AdminService(ModelRegistry* registry, AdapterRegistry* adapters,
               const Authenticator* auth, Executor* executor, Metrics* metrics);

  grpc::ServerUnaryReactor* GetStats(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::GetStatsRequest* request,
      lumen::v1::GetStatsResponse* response) override;
  grpc::ServerUnaryReactor* ListAdapters(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::ListAdaptersRequest* request,
      lumen::v1::ListAdaptersResponse* response) override;
  grpc::ServerUnaryReactor* LoadAdapter(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::LoadAdapterRequest* request,
      lumen::v1::LoadAdapterResponse* response) override;
  grpc::ServerUnaryReactor* UnloadAdapter(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::UnloadAdapterRequest* request,
      lumen::v1::UnloadAdapterResponse* response) override;

 private:
  ModelRegistry* registry_;
  AdapterRegistry* adapters_;
  const Authenticator* auth_;
  Executor* executor_;
  Metrics* metrics_;  // may be null
};

}  // namespace lumen::server
