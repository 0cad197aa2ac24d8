#pragma once
// POST /v1/embeddings: sentence embeddings from lumend's --embedding-model,
// in OpenAI's shape ("float" lists or "base64" little-endian float32, the
// SDKs' default). The model runs on the embedding worker; the call waits on
// the server's executor, as the gRPC Embed does, so both front ends share
// its bound (a full executor is 429).

#include "httplib.h"
#include "server/http/http_services.h"
#include "server/http/json_fields.h"

namespace lumen::server::http {

// At most this many inputs per request (as gRPC's Embed).
inline constexpr int kMaxEmbeddingInputs = 256;

// Handles one request on its HTTP worker thread; blocks until the
// embeddings are computed.
void HandleEmbeddings(const HttpServices& services, const Json& body,
                      httplib::Response& res);

}  // namespace lumen::server::http
