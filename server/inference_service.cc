#include "server/inference_service.h"

#include "absl/strings/str_cat.h"
#include "base/unicode.h"
#include "server/generate_reactors.h"
#include "server/reply.h"

namespace lumen::server {

InferenceService::InferenceService(ModelRegistry* registry,
                                   InferenceOptions options)
    : registry_(registry), options_(options) {
  CheckParsing("Generate", &InferenceService::Generate);
  CheckParsing("GenerateStream", &InferenceService::GenerateStream);
  CheckParsing("Tokenize", &InferenceService::Tokenize);
  CheckParsing("Detokenize", &InferenceService::Detokenize);
  CheckParsing("ListModels", &InferenceService::ListModels);
  CheckParsing("Embed", &InferenceService::Embed);
  CheckedEveryMethod();
}

grpc::ServerUnaryReactor* InferenceService::Generate(
    grpc::CallbackServerContext* ctx, const lumen::v1::GenerateRequest* request,
    lumen::v1::GenerateResponse* response) {
  return StartGenerate(options_.pipeline, ctx, *request, response,
                       options_.auth->Authenticate(ctx));
}

grpc::ServerWriteReactor<lumen::v1::GenerateStreamResponse>*
InferenceService::GenerateStream(grpc::CallbackServerContext* ctx,
                                 const lumen::v1::GenerateRequest* request) {
  return StartGenerateStream(options_.pipeline, ctx, *request,
                             options_.auth->Authenticate(ctx));
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(
    grpc::CallbackServerContext* ctx, const lumen::v1::TokenizeRequest* request,
    lumen::v1::TokenizeResponse* response) {
  if (auto principal = options_.auth->Authenticate(ctx); !principal.ok())
    return Reply(ctx, principal.status());
  auto model = registry_->Find(request->model());
  if (!model.ok()) return Reply(ctx, model.status());
  const engine::Tokenizer& tok = *(*model)->tokenizer;
  for (int32_t id : tok.Encode(request->text(), request->add_special(),
                               request->parse_special())) {
    response->add_token_ids(id);
    response->add_pieces(tok.TokenToPiece(id, true));  // bytes
  }
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::DetokenizeRequest* request,
    lumen::v1::DetokenizeResponse* response) {
  if (auto principal = options_.auth->Authenticate(ctx); !principal.ok())
    return Reply(ctx, principal.status());
  auto model = registry_->Find(request->model());
  if (!model.ok()) return Reply(ctx, model.status());
  const engine::Tokenizer& tok = *(*model)->tokenizer;
  std::vector<int32_t> ids(request->token_ids().begin(),
                           request->token_ids().end());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= tok.vocab().size()) {
      return Reply(ctx,
                   absl::InvalidArgumentError(absl::StrCat(
                       "token_ids[", i, "] = ", ids[i],
                       " is outside the vocabulary of ", tok.vocab().size())));
    }
  }
  // `text` is a string: ids that end inside a character give U+FFFD.
  response->set_text(ToValidUtf8(tok.Decode(ids, request->render_special())));
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ListModels(
    grpc::CallbackServerContext* ctx, const lumen::v1::ListModelsRequest*,
    lumen::v1::ListModelsResponse* response) {
  if (auto principal = options_.auth->Authenticate(ctx); !principal.ok())
    return Reply(ctx, principal.status());
  if (!registry_->ready())
    return Reply(ctx, absl::UnavailableError("models are still loading"));
  for (const auto& m : registry_->models()) {
    lumen::v1::ModelInfo* info = response->add_models();
    const engine::Transformer& t = m->engine->model();
    info->set_name(m->name);
    info->set_path(m->path);
    info->set_architecture(t.config().arch);
    info->set_parameters(m->parameters);
    info->set_weights(t.int8() ? "int8" : "f32");
    info->set_context_length(t.max_context());
    info->set_vocab_size(m->tokenizer->vocab().size());
    info->set_has_chat_template(!m->tokenizer->vocab().chat_template.empty());
    info->set_resident_bytes(t.resident_bytes().total());
  }
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::Embed(
    grpc::CallbackServerContext* ctx, const lumen::v1::EmbedRequest* request,
    lumen::v1::EmbedResponse* response) {
  if (auto principal = options_.auth->Authenticate(ctx); !principal.ok())
    return Reply(ctx, principal.status());
  if (options_.embedder == nullptr) {
    return Reply(
        ctx,
        absl::FailedPreconditionError(
            "lumend has no embedding model (start it with --embedding-model)"));
  }
  if (request->texts_size() == 0 || request->texts_size() > 256) {
    return Reply(
        ctx, absl::InvalidArgumentError("texts must hold 1 to 256 strings"));
  }
  // The embedding worker runs the model; waiting for it blocks.
  return ReplyLater(
      ctx, options_.executor,
      [embedder = options_.embedder, request, response]() -> absl::Status {
        auto vecs = embedder->Embed(std::vector<std::string>(
            request->texts().begin(), request->texts().end()));
        if (!vecs.ok()) return vecs.status();
        response->set_dim(embedder->dim());
        for (const auto& v : *vecs) {
          auto* e = response->add_embeddings();
          e->mutable_values()->Add(v.begin(), v.end());
        }
        return absl::OkStatus();
      });
}

}  // namespace lumen::server
