#include "server/http/embeddings_handler.h"

#include <cstring>
#include <future>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "server/http/http_reply.h"
#include "server/request_builder.h"

namespace lumen::server::http {

namespace {

struct EmbeddingsRequest {
  std::vector<std::string> texts;
  bool base64 = false;
};

absl::StatusOr<EmbeddingsRequest> Translate(const HttpServices& services,
                                            const Json& body) {
  if (!body.is_object()) return TypeError("body", "a JSON object", body);
  const JsonFields f(body);
  EmbeddingsRequest r;
  ASSIGN_OR_RETURN(std::optional<std::string> model, f.String("model"));
  if (model && !model->empty() && *model != services.embedding_model) {
    return absl::NotFoundError(
        absl::StrCat("model '", *model, "' not found; the embedding model is '",
                     services.embedding_model, "'"));
  }
  const Json* input = f.Find("input");
  if (input == nullptr) return FieldError("input", "is required");
  if (input->is_string()) {
    r.texts.push_back(input->get<std::string>());
  } else if (input->is_array()) {
    for (size_t i = 0; i < input->size(); ++i) {
      const Json& v = (*input)[i];
      if (!v.is_string()) {
        return FieldError(
            absl::StrCat("input[", i, "]"),
            absl::StrCat("must be a string (got ", JsonTypeName(v),
                         "): token-id inputs are not supported"));
      }
      r.texts.push_back(v.get<std::string>());
    }
  } else {
    return TypeError("input", "a string or an array of strings", *input);
  }
  if (r.texts.empty() ||
      r.texts.size() > static_cast<size_t>(kMaxEmbeddingInputs)) {
    return FieldError("input", absl::StrCat("must hold 1 to ",
                                            kMaxEmbeddingInputs, " strings"));
  }
  for (size_t i = 0; i < r.texts.size(); ++i) {
    if (r.texts[i].empty()) {
      return FieldError(
          input->is_string() ? "input" : absl::StrCat("input[", i, "]"),
          "must not be empty");
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::string> format,
                   f.String("encoding_format"));
  if (format && *format != "float" && *format != "base64") {
    return FieldError(
        "encoding_format",
        absl::StrCat("must be float or base64 (got '", *format, "')"));
  }
  r.base64 = format && *format == "base64";
  ASSIGN_OR_RETURN(std::optional<int64_t> dimensions,
                   f.Integer("dimensions", 1, 1 << 20));
  if (dimensions && *dimensions != services.embedder->dim()) {
    return FieldError(
        "dimensions",
        absl::StrCat("must be ", services.embedder->dim(),
                     ", this model's size (got ", *dimensions, ")"));
  }
  RETURN_IF_ERROR(f.String("user").status());
  return r;
}

struct Embedded {
  std::vector<std::vector<float>> vectors;  // [texts][dim]
  int64_t tokens = 0;
};

}  // namespace

void HandleEmbeddings(const HttpServices& services, const Json& body,
                      httplib::Response& res) {
  if (services.embedder == nullptr) {
    return SendStatus(res, absl::FailedPreconditionError(
                               "lumend has no embedding model (start it with "
                               "--embedding-model)"));
  }
  absl::StatusOr<EmbeddingsRequest> r = Translate(services, body);
  if (!r.ok()) {
    const bool model = r.status().code() == absl::StatusCode::kNotFound;
    return SendStatus(res, r.status(), model ? "model" : FieldOf(r.status()),
                      model ? "model_not_found" : "");
  }
  // The embedding worker runs the model; the wait for it happens on the
  // executor, which bounds the waiting calls of both front ends.
  auto done = std::make_shared<std::promise<absl::StatusOr<Embedded>>>();
  std::future<absl::StatusOr<Embedded>> result = done->get_future();
  absl::Status posted = services.executor->Post(
      [embedder = services.embedder, texts = r->texts, done] {
        absl::StatusOr<std::vector<std::vector<float>>> vectors =
            embedder->Embed(texts);
        if (!vectors.ok()) return done->set_value(vectors.status());
        Embedded e;
        e.vectors = std::move(*vectors);
        for (const std::string& t : texts) e.tokens += embedder->CountTokens(t);
        done->set_value(std::move(e));
      });
  if (!posted.ok()) return SendStatus(res, posted);
  absl::StatusOr<Embedded> embedded = result.get();
  if (!embedded.ok()) return SendStatus(res, embedded.status());

  JsonOut data = JsonOut::array();
  for (size_t i = 0; i < embedded->vectors.size(); ++i) {
    const std::vector<float>& v = embedded->vectors[i];
    JsonOut item = {{"object", "embedding"}, {"index", i}};
    if (r->base64) {
      // OpenAI's base64 form: the float32 values, little-endian (x86-64's
      // order), base64-encoded.
      std::string raw(v.size() * sizeof(float), '\0');
      std::memcpy(raw.data(), v.data(), raw.size());
      item["embedding"] = absl::Base64Escape(raw);
    } else {
      item["embedding"] = v;
    }
    data.push_back(std::move(item));
  }
  SendJson(res, 200,
           {{"object", "list"},
            {"data", std::move(data)},
            {"model", services.embedding_model},
            {"usage",
             {{"prompt_tokens", embedded->tokens},
              {"total_tokens", embedded->tokens}}}});
}

}  // namespace lumen::server::http
