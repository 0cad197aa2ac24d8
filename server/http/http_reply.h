#pragma once
// Writing a whole (non-streaming) HTTP response: a JSON body, or OpenAI's
// error object with its status and Retry-After. The handler's thread.

#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/http/openai_error.h"

namespace lumen::server::http {

// `body` as application/json with `status`.
void SendJson(httplib::Response& res, int status, const JsonOut& body);
// The error's status, body and Retry-After header.
void SendError(httplib::Response& res, const HttpError& error);
// ToHttpError(status, param) sent.
void SendStatus(httplib::Response& res, const absl::Status& status,
                const std::string& param = "", const std::string& code = "");

}  // namespace lumen::server::http
