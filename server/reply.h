#pragma once
// Finishing unary gRPC calls: the one place a callback service turns an
// absl::Status into the call's end, inline or after work on the executor.

#include <functional>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "server/executor.h"

namespace lumen::server {

// Finishes the call now with `status` (mapped by ToGrpc).
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx,
                                const absl::Status& status);

// Runs `work` on `executor` (never on the callback thread) and finishes the
// call with its status; the response message stays valid until then. A full
// executor finishes the call at once with RESOURCE_EXHAUSTED; a call
// cancelled before its turn ends CANCELLED without running `work`.
grpc::ServerUnaryReactor* ReplyLater(grpc::CallbackServerContext* ctx,
                                     Executor* executor,
                                     std::function<absl::Status()> work);

}  // namespace lumen::server
