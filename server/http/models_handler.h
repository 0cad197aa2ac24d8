#pragma once
// GET /v1/models and GET /v1/models/{id}: the served models (and the
// embedding model) as OpenAI model objects, with Lumen's details under
// "lumen". Answered inline: no I/O.

#include <cstdint>
#include <string>

#include "httplib.h"
#include "server/http/http_services.h"

namespace lumen::server::http {

// `created`: when lumend started (Unix seconds).
void HandleListModels(const HttpServices& services, int64_t created,
                      httplib::Response& res);
// 404 model_not_found for a name that is not served.
void HandleGetModel(const HttpServices& services, int64_t created,
                    const std::string& id, httplib::Response& res);

}  // namespace lumen::server::http
