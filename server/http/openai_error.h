#pragma once
// The one place the HTTP front end turns an absl::Status into a response:
// the HTTP status mapped from the same status codes as gRPC, OpenAI's error
// object {"error": {"message", "type", "param", "code"}}, and Retry-After
// when a quota says when to come back. Pure functions; any thread.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace lumen::server::http {

// JSON the server writes: members keep the order they were added in ("id"
// first, as OpenAI sends them), unlike the parsed requests' nlohmann::json.
using JsonOut = nlohmann::ordered_json;

// Status payload (seconds, as text) of a RESOURCE_EXHAUSTED status that
// knows when the client may retry (per-key quotas).
inline constexpr char kRetryAfterPayload[] = "lumen.dev/retry-after";

struct HttpError {
  int status = 500;
  JsonOut body;                            // {"error": {...}}
  std::optional<std::string> retry_after;  // Retry-After header, seconds
};

// 400 INVALID_ARGUMENT / FAILED_PRECONDITION / OUT_OF_RANGE, 401, 403, 404,
// 409, 429 RESOURCE_EXHAUSTED, 499 CANCELLED (the client went away), 501,
// 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED, 500 for the rest.
int HttpStatusOf(absl::StatusCode code);

// The error response for `status` (not OK). `param` names the request field
// at fault in OpenAI's terms (empty: null); when the message starts with the
// status's field payload (a proto path such as "sampling.top_p"), that
// prefix is rewritten to `param`. `code` is OpenAI's error code (empty: a
// default for the status, e.g. "rate_limit_exceeded", or null).
HttpError ToHttpError(const absl::Status& status, const std::string& param = "",
                      const std::string& code = "");

// The error object for an HTTP-level failure that has no Status (an unknown
// route, an oversized body): `message` with the type for `http_status`.
JsonOut ErrorBody(int http_status, const std::string& message,
                  const std::string& param = "", const std::string& code = "");
// The same as a whole HttpError.
HttpError HttpErrorOf(int http_status, const std::string& message);

}  // namespace lumen::server::http
