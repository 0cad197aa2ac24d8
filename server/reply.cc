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
  // A call cancelled while it waited (client gone, deadline, or the
  // server's shutdown grace over) is not worked on: shutdown never waits for
  // a queue of abandoned work.
  absl::Status posted = executor->Post([ctx, r, work = std::move(work)] {
    if (ctx->IsCancelled()) {
      r->Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                             "the call was cancelled before it ran"));
      return;
    }
    r->Finish(ToGrpc(work()));
  });
  if (!posted.ok()) r->Finish(ToGrpc(posted));
  return r;
}

}  // namespace lumen::server
