#pragma once
// POST /v1/completions and POST /v1/chat/completions: the body is translated
// into a GenerateRequest (openai_request.h) and started on the shared
// GeneratePipeline with api "http"; the answer is one JSON object, or with
// "stream": true Server-Sent Events written by the connection's worker
// thread as the engine's output stage delivers text. A client that
// disconnects is seen by the DisconnectWatcher at once (or at the next
// write when its socket cannot be watched) and its request is aborted (its
// KV blocks are freed at the next step).

#include <memory>

#include "absl/time/time.h"
#include "httplib.h"
#include "server/auth.h"
#include "server/http/http_services.h"
#include "server/http/json_fields.h"
#include "server/http/openai_request.h"

namespace lumen::server::http {

// The longest a worker waits for output before it looks at its stream again
// (a server that stops ends the stream then). Output and a client that
// leaves wake it at once; this timer only bounds a lost wake-up.
inline constexpr absl::Duration kOutputWait = absl::Milliseconds(250);

// Handles one request on the HTTP worker thread that serves it; blocks
// until the pipeline accepted or refused it (and, without streaming, until
// the answer is complete). `in_flight` is held until the response ends.
void HandleCompletion(const HttpServices& services, Endpoint endpoint,
                      const Caller& principal, const Json& body,
                      std::shared_ptr<void> in_flight,
                      const httplib::Request& req, httplib::Response& res);

}  // namespace lumen::server::http
