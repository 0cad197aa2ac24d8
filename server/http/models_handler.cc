#include "server/http/models_handler.h"

#include "absl/strings/str_cat.h"
#include "server/http/http_reply.h"

namespace lumen::server::http {

namespace {

JsonOut ModelObject(const std::string& id, int64_t created, JsonOut details) {
  return {{"id", id},
          {"object", "model"},
          {"created", created},
          {"owned_by", "lumen"},
          {"lumen", std::move(details)}};
}

// Every model object, generation models first.
JsonOut AllModels(const HttpServices& services, int64_t created) {
  JsonOut data = JsonOut::array();
  for (const auto& m : services.models->models()) {
    const engine::Transformer& t = m->engine->model();
    data.push_back(ModelObject(
        m->name, created,
        {{"type", "generation"},
         {"architecture", t.config().arch},
         {"parameters", m->parameters},
         {"context_length", t.max_context()},
         {"vocab_size", m->tokenizer->vocab().size()},
         {"has_chat_template", !m->tokenizer->vocab().chat_template.empty()}}));
  }
  if (services.embedder != nullptr) {
    data.push_back(ModelObject(
        services.embedding_model, created,
        {{"type", "embedding"}, {"dimensions", services.embedder->dim()}}));
  }
  return data;
}

}  // namespace

void HandleListModels(const HttpServices& services, int64_t created,
                      httplib::Response& res) {
  if (!services.models->ready())
    return SendStatus(res, absl::UnavailableError("models are still loading"));
  SendJson(res, 200,
           {{"object", "list"}, {"data", AllModels(services, created)}});
}

void HandleGetModel(const HttpServices& services, int64_t created,
                    const std::string& id, httplib::Response& res) {
  if (!services.models->ready())
    return SendStatus(res, absl::UnavailableError("models are still loading"));
  for (JsonOut& m : AllModels(services, created)) {
    if (m["id"] == id) return SendJson(res, 200, m);
  }
  SendStatus(res,
             absl::NotFoundError(absl::StrCat("model '", id, "' not found")),
             "model", "model_not_found");
}

}  // namespace lumen::server::http
