#pragma once
// lumen.v1.Admin: statistics of every engine (queue, running, KV blocks,
// prefix cache, steps) and the adapter list.

#include "lumen/v1/admin.grpc.pb.h"
#include "server/auth.h"
#include "server/model_registry.h"

namespace lumen::server {

class AdminService final : public lumen::v1::Admin::CallbackService {
 public:
  AdminService(ModelRegistry* registry, const Authenticator* auth)
      : registry_(registry), auth_(auth) {}

  grpc::ServerUnaryReactor* GetStats(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::GetStatsRequest* request,
      lumen::v1::GetStatsResponse* response) override;
  grpc::ServerUnaryReactor* ListAdapters(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::ListAdaptersRequest* request,
      lumen::v1::ListAdaptersResponse* response) override;

 private:
  ModelRegistry* registry_;
  const Authenticator* auth_;
};

}  // namespace lumen::server
