#pragma once
// What the HTTP handlers use of the server: the models, the shared generate
// pipeline, authentication, the executor for blocking work and the
// embedding model. Owned by lumend (they outlive the HTTP server).

#include <cstdint>
#include <string>

#include "retrieval/embedder.h"
#include "server/auth.h"
#include "server/executor.h"
#include "server/generate_pipeline.h"
#include "server/http/disconnect_watcher.h"
#include "server/model_registry.h"

namespace lumen::server::http {

struct HttpServices {
  ModelRegistry* models = nullptr;          // required
  GeneratePipeline* pipeline = nullptr;     // required
  const Authenticator* auth = nullptr;      // required
  Executor* executor = nullptr;             // required
  retrieval::Embedder* embedder = nullptr;  // /v1/embeddings; may be null
  // The embedding model's name in /v1/models and the `model` that
  // /v1/embeddings accepts (besides "").
  std::string embedding_model;
  // Set by HttpServer (its own): cancels requests whose client left.
  DisconnectWatcher* disconnects = nullptr;
};

}  // namespace lumen::server::http
