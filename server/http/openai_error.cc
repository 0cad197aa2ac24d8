#include "server/http/openai_error.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/request_builder.h"

namespace lumen::server::http {

namespace {

// OpenAI's `type` of an error with this HTTP status.
const char* ErrorType(int http_status) {
  switch (http_status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    case 501:
      return "not_supported_error";
    default:
      return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

const char* DefaultCode(int http_status) {
  switch (http_status) {
    case 401:
      return "invalid_api_key";
    case 429:
      return "rate_limit_exceeded";
    case 503:
      return "unavailable";
    default:
      return "";
  }
}

}  // namespace

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    // nginx's "client closed request": only logs ever see it.
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    default:
      return 500;
  }
}

JsonOut ErrorBody(int http_status, const std::string& message,
                  const std::string& param, const std::string& code) {
  const std::string c = code.empty() ? DefaultCode(http_status) : code;
  JsonOut error = {{"message", message},
                   {"type", ErrorType(http_status)},
                   {"param", nullptr},
                   {"code", nullptr}};
  if (!param.empty()) error["param"] = param;
  if (!c.empty()) error["code"] = c;
  return {{"error", std::move(error)}};
}

HttpError HttpErrorOf(int http_status, const std::string& message) {
  HttpError e;
  e.status = http_status;
  e.body = ErrorBody(http_status, message);
  return e;
}

HttpError ToHttpError(const absl::Status& status, const std::string& param,
                      const std::string& code) {
  HttpError e;
  e.status = HttpStatusOf(status.code());
  std::string message(status.message());
  const std::string field = FieldOf(status);
  if (!param.empty() && !field.empty() && field != param &&
      absl::StartsWith(message, field)) {
    message = absl::StrCat(param, message.substr(field.size()));
  }
  e.body = ErrorBody(e.status, message, param, code);
  if (auto hint = status.GetPayload(kRetryAfterPayload)) {
    // Only delta-seconds goes into the header (RFC 9110 section 10.2.3).
    const std::string seconds(*hint);
    if (!seconds.empty() && seconds.size() <= 10 &&
        seconds.find_first_not_of("0123456789") == std::string::npos) {
      e.retry_after = seconds;
    }
  }
  return e;
}

}  // namespace lumen::server::http
