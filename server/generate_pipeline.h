#pragma once
// GeneratePipeline: the request path every front end shares (gRPC today,
// HTTP next). A front end authenticates and translates its wire format into
// a GenerateRequest; the pipeline then finds the model, validates, retrieves
// RAG passages and compiles the output constraint off the calling thread
// (on the server's executor: callback threads never block), builds the
// engine parameters (request_builder.h), resolves the adapter and submits to
// the model's engine. Requests refused on the way are counted in metrics.
//
//   front end -> Start -> [executor: RAG, constraint] -> build -> Submit
//            <- GenerateSink::OnAccepted / OnRejected (exactly once)
//            <- RequestStream deltas (from the engine's output stage)

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/generation.h"
#include "lumen/v1/inference.pb.h"
#include "retrieval/access.h"
#include "retrieval/rag_retriever.h"
#include "server/auth.h"
#include "server/executor.h"
#include "server/model_registry.h"
#include "server/request_builder.h"

namespace lumen::server {

class AdapterRegistry;
class Metrics;

// What a front end learns when its request is in the engine.
struct GenerateStart {
  uint64_t id = 0;
  engine::Engine* engine = nullptr;  // for Abort on cancellation
  // The model's tokenizer: the bytes of logprob alternatives.
  const engine::Tokenizer* tokenizer = nullptr;
  std::string model;
  std::vector<retrieval::ChunkHit> citations;  // RAG passages in the prompt
  double retrieval_seconds = 0;
  // The request offers tools: the format its output is parsed in.
  std::optional<chat::ToolCallFormat> tool_format;
};

// A front end's end of one generate request. Exactly one of the two is
// called, once, from the thread that called Start or an executor thread.
class GenerateSink {
 public:
  virtual ~GenerateSink() = default;
  // The engine has the request; its output follows on the stream given to
  // Start.
  virtual void OnAccepted(GenerateStart start) = 0;
  // Refused before reaching the engine.
  virtual void OnRejected(absl::Status status) = 0;
};

struct PipelineOptions {
  // Tenants share prefix-cache blocks (off: a tenant's KV never serves
  // another's prompt).
  bool share_prefix_cache = false;
  RequestLimits limits;
};

class GeneratePipeline {
 public:
  // `knowledge` may be null (no RAG); the others must outlive the pipeline.
  GeneratePipeline(ModelRegistry* models, const AdapterRegistry* adapters,
                   retrieval::KnowledgeStore* knowledge, Executor* executor,
                   Metrics* metrics, PipelineOptions options);

  // Starts `request` for `caller` (its key's quota admits it first).
  // `stream` receives the output once the request is accepted; `sink` must stay
  // valid until it is called. `api`
  // ("grpc", "http") labels logs and metrics. Any thread; never blocks.
  void Start(lumen::v1::GenerateRequest request, const Caller& caller,
             std::optional<engine::SteadyTime> deadline, std::string api,
             std::shared_ptr<engine::RequestStream> stream, GenerateSink* sink);

 private:
  struct Call;
  // Everything after validation: RAG, constraint, build, adapter, submit.
  absl::StatusOr<GenerateStart> Run(Call& call);
  // Gives back the quota slot of a call that never reached an engine.
  void ReleaseUnsubmitted(Call& call);
  // Counts a request refused before reaching an engine; returns `status`.
  absl::Status Rejected(const std::string& model, const std::string& api,
                        absl::Status status) const;

  ModelRegistry* models_;
  const AdapterRegistry* adapters_;
  std::unique_ptr<retrieval::RagRetriever> rag_;  // null without a store
  Executor* executor_;
  Metrics* metrics_;
  PipelineOptions options_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace lumen::server
