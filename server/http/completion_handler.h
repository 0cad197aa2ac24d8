#pragma once
// POST /v1/completions and POST /v1/chat/completions: the body is translated
// into a GenerateRequest (openai_request.h) and started on the shared
// GeneratePipeline with api "http"; the answer is one JSON object, or with
// "stream": true Server-Sent Events written by the connection's worker
// thread as the engine's output stage delivers text. A client that
// disconnects is noticed within kDisconnectPoll (streaming: also at its next
// write; non-streaming: once the request has run kProbeAfter) and its
// request is aborted (its KV blocks are freed at the next step).

#include <memory>

#include "absl/time/time.h"
#include "httplib.h"
#include "server/auth.h"
#include "server/http/http_services.h"
#include "server/http/json_fields.h"
#include "server/http/openai_request.h"

namespace lumen::server::http {

// How often a streaming worker that has nothing to write checks whether
// its client is still connected (while the request waits in the queue or
// prefills a long prompt; once tokens flow, every write checks).
inline constexpr absl::Duration kDisconnectPoll = absl::Milliseconds(20);
// A non-streaming request that runs longer than this starts watching its
// connection (finding the socket costs a scan of the process's descriptors,
// which short requests are spared).
inline constexpr absl::Duration kProbeAfter = absl::Milliseconds(200);

// Handles one request on the HTTP worker thread that serves it; blocks
// until the pipeline accepted or refused it (and, without streaming, until
// the answer is complete). `in_flight` is held until the response ends.
void HandleCompletion(const HttpServices& services, Endpoint endpoint,
                      const Caller& principal, const Json& body,
                      std::shared_ptr<void> in_flight,
                      const httplib::Request& req, httplib::Response& res);

}  // namespace lumen::server::http
