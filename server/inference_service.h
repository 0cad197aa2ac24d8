#pragma once
// lumen.v1.Inference on gRPC's callback API: a thin front end. Generate and
// GenerateStream hand their requests to the shared GeneratePipeline (the
// reactors live in generate_reactors.h); Tokenize, Detokenize and
// ListModels answer inline (cheap, no I/O); Embed runs on the executor.
// Callback threads never run model code and never block.

#include "lumen/v1/inference.grpc.pb.h"
#include "retrieval/knowledge_store.h"
#include "server/auth.h"
#include "server/executor.h"
#include "server/generate_pipeline.h"
#include "server/model_registry.h"
#include "server/parse_checked_service.h"

namespace lumen::server {

struct InferenceOptions {
  const Authenticator* auth = nullptr;      // required
  GeneratePipeline* pipeline = nullptr;     // required
  Executor* executor = nullptr;             // required
  retrieval::Embedder* embedder = nullptr;  // Embed RPC; may be null
};

class InferenceService final
    : public ParseCheckedService<lumen::v1::Inference> {
 public:
  InferenceService(ModelRegistry* registry, InferenceOptions options);

  grpc::ServerUnaryReactor* Generate(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::GenerateRequest* request,
      lumen::v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<lumen::v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::TokenizeRequest* request,
      lumen::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::DetokenizeRequest* request,
      lumen::v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx,
                                  const lumen::v1::EmbedRequest* request,
                                  lumen::v1::EmbedResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::ListModelsRequest* request,
      lumen::v1::ListModelsResponse* response) override;

 private:
  ModelRegistry* registry_;
  InferenceOptions options_;
};

}  // namespace lumen::server
