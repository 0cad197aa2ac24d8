#pragma once
// lumen.v1.Inference on gRPC's callback API. RPC threads validate, tokenize
// and submit to the model's engine; they never run model code. Streaming
// replies coalesce pending tokens into one write with one write in flight,
// so a slow reader never stalls the engine.

#include <atomic>
#include <optional>
#include <string>

#include "chat/chat_family.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "retrieval/knowledge_store.h"
#include "server/auth.h"
#include "server/model_registry.h"

namespace lumen::server {

class AdapterRegistry;
class Metrics;

struct InferenceOptions {
  Metrics* metrics = nullptr;           // counts rejected requests; may be null
  const Authenticator* auth = nullptr;  // required
  retrieval::KnowledgeStore* knowledge = nullptr;  // RAG; may be null
  retrieval::Embedder* embedder = nullptr;         // Embed RPC; may be null
  const AdapterRegistry* adapters = nullptr;       // LoRA; may be null
  // Forces a chat template family instead of detecting it from the model.
  std::optional<chat::ChatFamily> chat_template;
};

class InferenceService final : public lumen::v1::Inference::CallbackService {
 public:
  InferenceService(ModelRegistry* registry, InferenceOptions options)
      : registry_(registry), options_(options) {}

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

  struct Prepared {
    engine::GenerateParams params;
    std::vector<retrieval::ChunkHit> citations;  // RAG passages in the prompt
    double retrieval_seconds = 0;
  };
  // Validates a request, retrieves RAG passages and turns it into engine
  // parameters (front-end validation: the engine only schedules).
  absl::StatusOr<Prepared> Prepare(
      const lumen::v1::GenerateRequest& request, const ServedModel& model,
      const Principal& principal,
      std::optional<engine::SteadyTime> deadline) const;

 private:
  // Counts a request that failed before reaching an engine and returns the
  // status unchanged.
  absl::Status Rejected(const absl::StatusOr<ServedModel*>& model,
                        absl::Status status) const;

  ModelRegistry* registry_;
  InferenceOptions options_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace lumen::server
