#include "server/reply.h"

#include "server/status_util.h"

namespace lumen::server {

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx,
                                const absl::Status& status) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpc(status));
  return r;
}

grpc::ServerUnaryReactor* ReplyLater(grpc::CallbackServerContext* ctx,
                                     Executor* executor,
                                     std::function<absl::Status()> work) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  absl::Status posted = executor->Post(
      [r, work = std::move(work)] { r->Finish(ToGrpc(work())); });
  if (!posted.ok()) r->Finish(ToGrpc(posted));
  return r;
}

}  // namespace lumen::server
