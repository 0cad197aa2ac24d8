#include "server/request_builder.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "retrieval/rag_retriever.h"
#include "server/tool_calls.h"

namespace lumen::server {

using lumen::v1::GenerateRequest;

absl::Status FieldError(absl::string_view field, absl::string_view message) {
  absl::Status s =
      absl::InvalidArgumentError(absl::StrCat(field, " ", message));
  s.SetPayload(kFieldPayload, absl::Cord(field));
  return s;
}

std::string FieldOf(const absl::Status& status) {
  auto p = status.GetPayload(kFieldPayload);
  return p ? std::string(*p) : std::string();
}

namespace {

// Mistral's v11 templates (Mistral-Small-3.2 and later) write calls as
// [TOOL_CALLS]NAME[ARGS]{...}: parsed, but the constrained grammar is the
// older [TOOL_CALLS][{...}] list, which "auto" must not force on them.
bool IsMistralV11(absl::string_view template_source) {
  return absl::StrContains(template_source, "[ARGS]");
}

int NumPromptSources(const GenerateRequest& r) {
  return !r.prompt().empty() + (r.messages_size() > 0) +
         (r.prompt_token_ids_size() > 0);
}

// The RAG question: the last user message, or the prompt.
std::string Question(const GenerateRequest& r) {
  std::string q = r.prompt();
  for (const auto& m : r.messages()) {
    if (m.role() == "user") q = m.content();
  }
  return q;
}

// Tokenizes a rendered chat prompt so that the messages' own text can never
// become control tokens: the template's text is parsed for special tokens,
// every message content found verbatim (in order) is not.
std::vector<int32_t> EncodeChat(const engine::Tokenizer& tok,
                                const std::string& rendered,
                                const std::vector<std::string>& contents) {
  std::vector<int32_t> ids;
  size_t cursor = 0;
  auto append = [&](absl::string_view text, bool parse_special) {
    if (text.empty()) return;
    std::vector<int32_t> part =
        tok.Encode(text, /*add_special=*/false, parse_special);
    ids.insert(ids.end(), part.begin(), part.end());
  };
  for (const std::string& content : contents) {
    if (content.empty()) continue;
    const size_t at = rendered.find(content, cursor);
    if (at == std::string::npos) continue;  // the template rewrote it
    append(absl::string_view(rendered).substr(cursor, at - cursor), true);
    append(content, false);
    cursor = at + content.size();
  }
  append(absl::string_view(rendered).substr(cursor), true);
  return ids;
}

absl::Status FillSampling(const GenerateRequest& req,
                          engine::GenerateParams* p) {
  const lumen::v1::SamplingParams& s = req.sampling();
  p->max_tokens =
      s.has_max_tokens() ? static_cast<int32_t>(s.max_tokens()) : 128;
  p->sampling.temperature = s.has_temperature() ? s.temperature() : 1.0f;
  p->sampling.top_k = static_cast<int32_t>(s.top_k());
  p->sampling.top_p = s.has_top_p() ? s.top_p() : 1.0f;
  p->sampling.min_p = s.min_p();
  p->sampling.repetition_penalty =
      s.has_repetition_penalty() ? s.repetition_penalty() : 1.0f;
  p->sampling.presence_penalty = s.presence_penalty();
  p->sampling.frequency_penalty = s.frequency_penalty();
  if (s.has_seed()) p->sampling.seed = s.seed();
  p->logprobs = static_cast<int32_t>(s.logprobs());
  p->ignore_eos = s.ignore_eos();
  p->stop.assign(s.stop().begin(), s.stop().end());
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateGenerateRequest(const GenerateRequest& req,
                                     const RequestLimits& limits) {
  const lumen::v1::SamplingParams& s = req.sampling();
  if (s.has_max_tokens() && s.max_tokens() == 0)
    return FieldError("sampling.max_tokens", "must be >= 1 (got 0)");
  if (s.max_tokens() > static_cast<uint32_t>(INT32_MAX)) {
    return FieldError("sampling.max_tokens",
                      absl::StrCat("must be at most ", INT32_MAX, " (got ",
                                   s.max_tokens(), ")"));
  }
  const float temperature = s.has_temperature() ? s.temperature() : 1.0f;
  if (!(temperature >= 0.0f) || temperature > 100.0f) {
    return FieldError(
        "sampling.temperature",
        absl::StrCat("must be in [0, 100] (got ", temperature, ")"));
  }
  const float top_p = s.has_top_p() ? s.top_p() : 1.0f;
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return FieldError("sampling.top_p",
                      absl::StrCat("must be in (0, 1] (got ", top_p, ")"));
  }
  if (!(s.min_p() >= 0.0f && s.min_p() <= 1.0f)) {
    return FieldError("sampling.min_p",
                      absl::StrCat("must be in [0, 1] (got ", s.min_p(), ")"));
  }
  const float rep = s.has_repetition_penalty() ? s.repetition_penalty() : 1.0f;
  if (!(rep > 0.0f && rep <= 10.0f)) {
    return FieldError("sampling.repetition_penalty",
                      absl::StrCat("must be in (0, 10] (got ", rep, ")"));
  }
  for (auto [name, v] :
       {std::pair<const char*, float>{"sampling.presence_penalty",
                                      s.presence_penalty()},
        {"sampling.frequency_penalty", s.frequency_penalty()}}) {
    if (!(v >= -2.0f && v <= 2.0f)) {
      return FieldError(name, absl::StrCat("must be in [-2, 2] (got ", v, ")"));
    }
  }
  if (s.logprobs() > static_cast<uint32_t>(limits.max_logprobs)) {
    return FieldError("sampling.logprobs",
                      absl::StrCat("must be at most ", limits.max_logprobs,
                                   " (got ", s.logprobs(), ")"));
  }
  if (s.stop_size() > limits.max_stop_strings) {
    return FieldError("sampling.stop",
                      absl::StrCat("has ", s.stop_size(), " strings; at most ",
                                   limits.max_stop_strings));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty() ||
        s.stop(i).size() > static_cast<size_t>(limits.max_stop_bytes)) {
      return FieldError(
          absl::StrCat("sampling.stop[", i, "]"),
          absl::StrCat("must be 1 to ", limits.max_stop_bytes, " bytes"));
    }
  }
  const int sources = NumPromptSources(req);
  if (sources == 0) {
    return FieldError("prompt",
                      "is empty: set prompt, messages or prompt_token_ids");
  }
  if (sources > 1) {
    return FieldError("prompt",
                      "set only one of prompt, messages and prompt_token_ids");
  }
  int64_t prompt_bytes = static_cast<int64_t>(req.prompt().size());
  for (int i = 0; i < req.messages_size(); ++i) {
    const auto& m = req.messages(i);
    if (m.role() != "system" && m.role() != "user" && m.role() != "assistant" &&
        m.role() != "tool") {
      return FieldError(absl::StrCat("messages[", i, "].role"),
                        absl::StrCat("'", m.role(),
                                     "' is not system, user, assistant or "
                                     "tool"));
    }
    prompt_bytes +=
        static_cast<int64_t>(m.content().size() + m.tool_calls_json().size() +
                             m.tool_call_id().size());
  }
  prompt_bytes += static_cast<int64_t>(req.tools_json().size());
  if (!req.tools_json().empty() || !req.tool_choice_json().empty()) {
    if (req.messages_size() == 0) {
      return FieldError("tools", "need messages (a chat request)");
    }
    RETURN_IF_ERROR(ParseToolRequest(req).status());
  }
  if (req.messages_size() > 0) RETURN_IF_ERROR(ChatMessagesJson(req).status());
  if (prompt_bytes > limits.max_prompt_bytes) {
    return FieldError(
        "prompt",
        absl::StrCat("of ", prompt_bytes, " bytes exceeds the limit of ",
                     limits.max_prompt_bytes, " bytes"));
  }
  const lumen::v1::RagOptions& rag = req.rag();
  if (rag.collections_size() > 0) {
    if (req.prompt_token_ids_size() > 0) {
      return FieldError("rag",
                        "needs a text prompt or messages, not "
                        "prompt_token_ids");
    }
    if (rag.top_k() > static_cast<uint32_t>(limits.max_rag_top_k)) {
      return FieldError("rag.top_k",
                        absl::StrCat("must be at most ", limits.max_rag_top_k,
                                     " (got ", rag.top_k(), ")"));
    }
    if (!rag.prompt_template().empty() &&
        rag.prompt_template().find("{passages}") == std::string::npos) {
      return FieldError("rag.prompt_template", "must contain {passages}");
    }
  }
  return absl::OkStatus();
}

std::optional<RagQuery> RagQueryOf(const GenerateRequest& r) {
  if (r.rag().collections_size() == 0) return std::nullopt;
  RagQuery q;
  q.collections.assign(r.rag().collections().begin(),
                       r.rag().collections().end());
  q.search.query = Question(r);
  q.search.top_k = r.rag().top_k() ? static_cast<int>(r.rag().top_k()) : 4;
  q.search.min_score = r.rag().min_score();
  q.search.filter = std::map<std::string, std::string>(r.rag().filter().begin(),
                                                       r.rag().filter().end());
  switch (r.rag().mode()) {
    case lumen::v1::SEARCH_MODE_VECTOR:
      q.search.mode = retrieval::SearchMode::kVector;
      break;
    case lumen::v1::SEARCH_MODE_KEYWORD:
      q.search.mode = retrieval::SearchMode::kKeyword;
      break;
    default:
      q.search.mode = retrieval::SearchMode::kHybrid;
  }
  return q;
}

absl::StatusOr<BuiltRequest> BuildGenerateParams(
    const GenerateRequest& req, const ModelContext& model,
    std::vector<retrieval::ChunkHit> passages, const RequestLimits& limits) {
  RETURN_IF_ERROR(ValidateGenerateRequest(req, limits));
  BuiltRequest built;
  engine::GenerateParams& p = built.params;
  RETURN_IF_ERROR(FillSampling(req, &p));
  const engine::Tokenizer& tok = *model.tokenizer;

  if (req.prompt_token_ids_size() > 0) {
    const int32_t n_vocab = tok.vocab().size();
    for (int i = 0; i < req.prompt_token_ids_size(); ++i) {
      const int32_t id = req.prompt_token_ids(i);
      if (id < 0 || id >= n_vocab) {
        return FieldError(
            absl::StrCat("prompt_token_ids[", i, "]"),
            absl::StrCat("= ", id, " is outside the vocabulary of ", n_vocab));
      }
      p.prompt_tokens.push_back(id);
    }
    return built;
  }

  // Renders the prompt with `rag_block` (empty: no RAG) and tokenizes it.
  const bool chat = req.messages_size() > 0;
  if (chat && model.chat_template == nullptr) {
    return FieldError("messages",
                      absl::StrCat("cannot be rendered: model '", model.name,
                                   "' has no chat template"));
  }
  ASSIGN_OR_RETURN(const ToolRequest tool, ParseToolRequest(req));
  if (tool.active()) {
    built.tool_format =
        chat::DetectToolCallFormat(model.chat_template->source());
    if (tool.choice.mode == chat::ToolChoice::Mode::kRequired ||
        tool.choice.mode == chat::ToolChoice::Mode::kFunction) {
      ASSIGN_OR_RETURN(built.tool_grammar,
                       ToolCallGrammar(*built.tool_format, tool));
    } else if (ToolTrigger trigger =
                   ToolCallTrigger(*built.tool_format, tool.parallel);
               !trigger.text.empty() &&
               !IsMistralV11(model.chat_template->source())) {
      // "auto": a call, once begun, is any of the tools, well formed. Tools
      // whose schemas have no grammar (a remote $ref, a keyword the
      // converter refuses) leave it free.
      ToolRequest any = tool;
      any.choice.mode = chat::ToolChoice::Mode::kRequired;
      if (auto grammar = ToolCallGrammar(*built.tool_format, any);
          grammar.ok()) {
        built.tool_grammar = std::move(*grammar);
        built.tool_trigger = std::move(trigger);
      }
    }
  }
  auto encode = [&](const std::string& rag_block)
      -> absl::StatusOr<std::vector<int32_t>> {
    if (!chat) {
      const std::string& text = rag_block.empty() ? req.prompt() : rag_block;
      return tok.Encode(text, /*add_special=*/true, /*parse_special=*/false);
    }
    ASSIGN_OR_RETURN(chat::Json messages, ChatMessagesJson(req));
    std::vector<std::string> contents;
    if (!rag_block.empty()) {
      if (req.messages(0).role() == "system") {
        messages[0]["content"] =
            absl::StrCat(req.messages(0).content(), "\n\n", rag_block);
      } else {
        // The passages and the instruction become the system message.
        messages.insert(messages.begin(),
                        chat::Json{{"role", "system"}, {"content", rag_block}});
      }
    }
    for (const auto& m : messages) {
      if (m["content"].is_string()) contents.push_back(m["content"]);
    }
    ASSIGN_OR_RETURN(std::string text,
                     model.chat_template->Render(
                         messages, tool.active() ? tool.tools : chat::Json(),
                         /*add_generation_prompt=*/true));
    std::vector<int32_t> ids = EncodeChat(tok, text, contents);
    const int32_t bos = tok.vocab().bos;
    if (tok.vocab().add_bos && bos >= 0 && (ids.empty() || ids[0] != bos))
      ids.insert(ids.begin(), bos);
    return ids;
  };

  std::optional<RagQuery> rag = RagQueryOf(req);
  if (!rag) {
    ASSIGN_OR_RETURN(p.prompt_tokens, encode(""));
    return built;
  }
  retrieval::PromptBudget budget;
  budget.context_size = model.context_size;
  budget.max_tokens = p.max_tokens;
  std::vector<int32_t> last;
  budget.count_prompt_tokens =
      [&](const std::string& block) -> absl::StatusOr<int64_t> {
    ASSIGN_OR_RETURN(last, encode(block));
    return static_cast<int64_t>(last.size());
  };
  const std::string tmpl = req.rag().prompt_template().empty()
                               ? retrieval::kDefaultRagTemplate
                               : req.rag().prompt_template();
  auto fitted =
      retrieval::FitPassages(passages, rag->search.query, tmpl, budget);
  if (!fitted.ok()) {
    return FieldError(req.messages_size() > 0 ? "messages" : "prompt",
                      fitted.status().message());
  }
  // The final rendering is the one with every chosen passage.
  ASSIGN_OR_RETURN(p.prompt_tokens, encode(fitted->block));
  built.citations = std::move(fitted->citations);
  return built;
}

std::optional<engine::constrained::ConstraintSpec> ConstraintOf(
    const lumen::v1::SamplingParams& s) {
  using engine::constrained::ConstraintKind;
  switch (s.constraint_case()) {
    case lumen::v1::SamplingParams::kJsonSchema:
      return engine::constrained::ConstraintSpec{ConstraintKind::kJsonSchema,
                                                 s.json_schema()};
    case lumen::v1::SamplingParams::kJsonObject:
      if (!s.json_object()) return std::nullopt;
      return engine::constrained::ConstraintSpec{ConstraintKind::kJsonObject,
                                                 ""};
    case lumen::v1::SamplingParams::kRegex:
      return engine::constrained::ConstraintSpec{ConstraintKind::kRegex,
                                                 s.regex()};
    case lumen::v1::SamplingParams::kGrammar:
      return engine::constrained::ConstraintSpec{ConstraintKind::kGrammar,
                                                 s.grammar()};
    default:
      return std::nullopt;
  }
}

const char* ConstraintField(const lumen::v1::SamplingParams& s) {
  switch (s.constraint_case()) {
    case lumen::v1::SamplingParams::kJsonSchema:
      return "sampling.json_schema";
    case lumen::v1::SamplingParams::kRegex:
      return "sampling.regex";
    case lumen::v1::SamplingParams::kGrammar:
      return "sampling.grammar";
    default:
      return "sampling.json_object";
  }
}

absl::Status SetOutputConstraint(const lumen::v1::GenerateRequest& req,
                                 engine::constrained::ConstraintCache& cache,
                                 BuiltRequest* built) {
  engine::GenerateParams& p = built->params;
  if (auto spec = ConstraintOf(req.sampling())) {
    auto compiled = cache.Get(*spec);
    if (!compiled.ok()) {
      return FieldError(ConstraintField(req.sampling()),
                        compiled.status().message());
    }
    p.constraint = std::move(*compiled);
  }
  const bool lazy = !built->tool_trigger.text.empty();
  if (built->tool_grammar.empty() || (lazy && p.constraint != nullptr)) {
    return absl::OkStatus();
  }
  auto compiled = cache.Get(engine::constrained::ConstraintSpec{
      engine::constrained::ConstraintKind::kGrammar, built->tool_grammar});
  if (compiled.ok()) {
    p.constraint = std::move(*compiled);
    p.constraint_trigger = built->tool_trigger.text;
    p.constraint_trigger_at_start = built->tool_trigger.at_start;
  } else if (!lazy) {
    return FieldError("tool_choice",
                      absl::StrCat("cannot constrain the tool call: ",
                                   compiled.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace lumen::server
