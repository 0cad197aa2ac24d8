// InferenceService::Prepare: front-end validation of a generate request
// (sampling bounds, adapter, prompt sources), RAG retrieval and the chat or
// RAG prompt rendering, producing the engine's parameters. Kept apart from
// the RPC reactors in inference_service.cc.

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/status_macros.h"
#include "server/adapter_registry.h"
#include "server/inference_service.h"
#include "server/knowledge_service.h"
#include "server/metrics.h"

namespace lumen::server {

using lumen::v1::GenerateRequest;

absl::StatusOr<InferenceService::Prepared> InferenceService::Prepare(
    const GenerateRequest& req, const ServedModel& model,
    const Principal& principal,
    std::optional<engine::SteadyTime> deadline) const {
  Prepared prepared;
  engine::GenerateParams& p = prepared.params;
  const lumen::v1::SamplingParams& s = req.sampling();
  if (!req.adapter().empty()) {
    if (options_.adapters == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "adapter '", req.adapter(), "' not found (no adapters are loaded)"));
    }
    ASSIGN_OR_RETURN(p.adapter,
                     options_.adapters->Find(req.adapter(), model.name));
    p.adapter_name = req.adapter();
  }
  if (s.has_max_tokens() && s.max_tokens() == 0) {
    return absl::InvalidArgumentError(
        "sampling.max_tokens must be >= 1 (got 0)");
  }
  p.max_tokens =
      s.has_max_tokens() ? static_cast<int32_t>(s.max_tokens()) : 128;
  const float temperature = s.has_temperature() ? s.temperature() : 1.0f;
  if (!(temperature >= 0.0f) || temperature > 100.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.temperature must be in [0, 100] (got ", temperature, ")"));
  }
  const float top_p = s.has_top_p() ? s.top_p() : 1.0f;
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.top_p must be in (0, 1] (got ", top_p, ")"));
  }
  if (!(s.min_p() >= 0.0f && s.min_p() <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.min_p must be in [0, 1] (got ", s.min_p(), ")"));
  }
  const float rep = s.has_repetition_penalty() ? s.repetition_penalty() : 1.0f;
  if (!(rep > 0.0f && rep <= 10.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.repetition_penalty must be in (0, 10] (got ", rep, ")"));
  }
  for (auto [name, v] :
       {std::pair<const char*, float>{"presence_penalty", s.presence_penalty()},
        {"frequency_penalty", s.frequency_penalty()}}) {
    if (!(v >= -2.0f && v <= 2.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling.", name, " must be in [-2, 2] (got ", v, ")"));
    }
  }
  if (s.logprobs() > 20) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.logprobs must be at most 20 (got ", s.logprobs(), ")"));
  }
  if (s.stop_size() > 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.stop has ", s.stop_size(), " strings; at most 16"));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty() || s.stop(i).size() > 256) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling.stop[", i, "] must be 1 to 256 bytes"));
    }
    p.stop.push_back(s.stop(i));
  }
  p.sampling.temperature = temperature;
  p.sampling.top_k = static_cast<int32_t>(s.top_k());
  p.sampling.top_p = top_p;
  p.sampling.min_p = s.min_p();
  p.sampling.repetition_penalty = rep;
  p.sampling.presence_penalty = s.presence_penalty();
  p.sampling.frequency_penalty = s.frequency_penalty();
  if (s.has_seed()) p.sampling.seed = s.seed();
  p.logprobs = static_cast<int32_t>(s.logprobs());
  p.ignore_eos = s.ignore_eos();
  p.deadline = deadline;

  const engine::Tokenizer& tok = *model.tokenizer;
  const int sources = !req.prompt().empty() + (req.messages_size() > 0) +
                      (req.prompt_token_ids_size() > 0);
  if (sources == 0) {
    return absl::InvalidArgumentError(
        "prompt is empty: set prompt, messages or prompt_token_ids");
  }
  if (sources > 1) {
    return absl::InvalidArgumentError(
        "set only one of prompt, messages and prompt_token_ids");
  }
  // RAG: retrieve passages and put them into the prompt.
  std::string prompt = req.prompt();
  std::vector<chat::ChatTurn> turns;
  for (const auto& m : req.messages()) turns.push_back({m.role(), m.content()});
  if (req.rag().collections_size() > 0) {
    if (options_.knowledge == nullptr) {
      return absl::FailedPreconditionError(
          "this lumend has no knowledge store");
    }
    if (req.prompt_token_ids_size() > 0) {
      return absl::InvalidArgumentError(
          "rag needs a text prompt or messages, not prompt_token_ids");
    }
    std::string question = prompt;
    for (const auto& t : turns) {
      if (t.role == "user") question = t.content;
    }
    retrieval::SearchRequest sr;
    sr.query = question;
    sr.top_k = req.rag().top_k() ? static_cast<int>(req.rag().top_k()) : 4;
    sr.min_score = req.rag().min_score();
    sr.filter = std::map<std::string, std::string>(req.rag().filter().begin(),
                                                   req.rag().filter().end());
    switch (req.rag().mode()) {
      case lumen::v1::SEARCH_MODE_VECTOR:
        sr.mode = retrieval::SearchMode::kVector;
        break;
      case lumen::v1::SEARCH_MODE_KEYWORD:
        sr.mode = retrieval::SearchMode::kKeyword;
        break;
      default:
        sr.mode = retrieval::SearchMode::kHybrid;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto hits =
        RetrieveForRag(options_.knowledge, principal,
                       std::vector<std::string>(req.rag().collections().begin(),
                                                req.rag().collections().end()),
                       sr);
    if (!hits.ok()) return hits.status();
    prepared.retrieval_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (options_.metrics)
      options_.metrics->ObserveRetrieval(prepared.retrieval_seconds);
    std::string passages;
    for (size_t i = 0; i < hits->size(); ++i) {
      const retrieval::ChunkHit& h = (*hits)[i];
      absl::StrAppend(&passages, "[", i + 1, "] ",
                      h.title.empty() ? h.document_id : h.title,
                      h.source.empty() ? "" : absl::StrCat(" (", h.source, ")"),
                      "\n", h.text, "\n\n");
    }
    const std::string tmpl =
        req.rag().prompt_template().empty()
            ? "Use the numbered passages below to answer. Cite the passages "
              "you use by number, "
              "like [1].\n\n{passages}Question: {question}\nAnswer:"
            : req.rag().prompt_template();
    const std::string rendered = absl::StrReplaceAll(
        tmpl, {{"{passages}", passages}, {"{question}", question}});
    if (turns.empty()) {
      prompt = rendered;
    } else if (turns[0].role == "system") {
      turns[0].content = absl::StrCat(turns[0].content, "\n\n", rendered);
    } else {
      // Chat: the passages and the instruction become the system message.
      turns.insert(turns.begin(), chat::ChatTurn{"system", rendered});
    }
    prepared.citations = std::move(*hits);
  }

  if (req.messages_size() > 0) {
    const std::string& tmpl = tok.vocab().chat_template;
    absl::StatusOr<chat::ChatFamily> family =
        options_.chat_template ? *options_.chat_template
        : tmpl.empty()
            ? absl::StatusOr<
                  chat::ChatFamily>(absl::InvalidArgumentError(absl::StrCat(
                  "model '", model.name,
                  "' has no chat template; send a prompt, or start lumend with "
                  "--chat-template NAME")))
            : chat::DetectChatFamily(tmpl);
    if (!family.ok()) return family.status();
    auto text = chat::RenderChat(*family, tmpl, turns);
    if (!text.ok()) return text.status();
    p.prompt_tokens =
        tok.Encode(*text, /*add_special=*/false, /*parse_special=*/true);
    const int32_t bos = tok.vocab().bos;
    if (tok.vocab().add_bos && bos >= 0 &&
        (p.prompt_tokens.empty() || p.prompt_tokens[0] != bos)) {
      p.prompt_tokens.insert(p.prompt_tokens.begin(), bos);
    }
  } else if (req.prompt_token_ids_size() > 0) {
    const int32_t n_vocab = tok.vocab().size();
    for (int i = 0; i < req.prompt_token_ids_size(); ++i) {
      const int32_t id = req.prompt_token_ids(i);
      if (id < 0 || id >= n_vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("prompt_token_ids[", i, "] = ", id,
                         " is outside the vocabulary of ", n_vocab));
      }
      p.prompt_tokens.push_back(id);
    }
  } else {
    p.prompt_tokens =
        tok.Encode(prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  const int64_t ctx = model.engine->context_size();
  if (static_cast<int64_t>(p.prompt_tokens.size()) >= ctx) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt of ", p.prompt_tokens.size(),
        " tokens is longer than the context of ", ctx, "  tokens (ctx-size)"));
  }
  return prepared;
}

}  // namespace lumen::server
