#pragma once
// The reactors of lumen.v1.Inference's Generate (unary) and GenerateStream
// (server streaming). Both are GenerateSinks of the GeneratePipeline and
// share one base: cancellation aborts the request in the engine once it is
// accepted, output is held back until then (so a stream's first message is
// its citations), and the engine's output stage drives the writes through
// the request's RequestStream notifier. One write in flight; pending output
// coalesces meanwhile, so a slow reader never stalls the engine.

#include <memory>

#include "grpcpp/grpcpp.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "server/generate_pipeline.h"

namespace lumen::server {

// Creates the reactor of a unary Generate call; it starts the request on
// `pipeline` and deletes itself when the call is done.
grpc::ServerUnaryReactor* StartGenerate(
    GeneratePipeline* pipeline, grpc::CallbackServerContext* ctx,
    const lumen::v1::GenerateRequest& request,
    lumen::v1::GenerateResponse* response,
    const absl::StatusOr<Caller>& caller);

// The same for GenerateStream.
grpc::ServerWriteReactor<lumen::v1::GenerateStreamResponse>*
StartGenerateStream(GeneratePipeline* pipeline,
                    grpc::CallbackServerContext* ctx,
                    const lumen::v1::GenerateRequest& request,
                    const absl::StatusOr<Caller>& caller);

}  // namespace lumen::server
