#include "server/http/http_reply.h"

namespace lumen::server::http {

void SendJson(httplib::Response& res, int status, const JsonOut& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, JsonOut::error_handler_t::replace),
                  "application/json");
}

void SendError(httplib::Response& res, const HttpError& error) {
  if (error.retry_after) res.set_header("Retry-After", *error.retry_after);
  SendJson(res, error.status, error.body);
}

void SendStatus(httplib::Response& res, const absl::Status& status,
                const std::string& param, const std::string& code) {
  SendError(res, ToHttpError(status, param, code));
}

}  // namespace lumen::server::http
