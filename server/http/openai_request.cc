#include "server/http/openai_request.h"

#include <cstdint>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "server/request_builder.h"

namespace lumen::server::http {

namespace {

using lumen::v1::GenerateRequest;
using lumen::v1::SamplingParams;

constexpr int64_t kMaxUint32 = std::numeric_limits<uint32_t>::max();

// Features of OpenAI's API that Lumen does not have: present with a value
// that asks for them, they are a 400 naming the member rather than being
// silently ignored.
absl::Status RejectUnsupported(const JsonFields& f, Endpoint endpoint) {
  ASSIGN_OR_RETURN(std::optional<int64_t> n, f.Integer("n", 0, 1 << 20));
  if (n && *n != 1) {
    return FieldError("n", absl::StrCat("must be 1: Lumen returns one choice "
                                        "per request (got ",
                                        *n, ")"));
  }
  if (const Json* bias = f.Find("logit_bias")) {
    if (!bias->is_object()) return TypeError("logit_bias", "an object", *bias);
    if (!bias->empty()) return FieldError("logit_bias", "is not supported");
  }
  // The deprecated functions API (before tools) is refused by name.
  for (const char* name : {"functions", "function_call"}) {
    if (f.Find(name) != nullptr)
      return FieldError(name, "is not supported: use tools and tool_choice");
  }
  if (const Json* modalities = f.Find("modalities")) {
    if (!modalities->is_array())
      return TypeError("modalities", "an array", *modalities);
    for (const Json& m : *modalities) {
      if (m != "text")
        return FieldError("modalities", "may only hold \"text\"");
    }
  }
  if (f.Find("audio") != nullptr)
    return FieldError("audio", "output is not supported");
  RETURN_IF_ERROR(f.String("user").status());
  if (endpoint == Endpoint::kCompletions) {
    for (const char* name : {"tools", "tool_choice", "parallel_tool_calls"}) {
      if (f.Find(name) != nullptr) {
        return FieldError(name, "is only supported by /v1/chat/completions");
      }
    }
    ASSIGN_OR_RETURN(std::optional<bool> echo, f.Bool("echo"));
    if (echo.value_or(false)) return FieldError("echo", "is not supported");
    ASSIGN_OR_RETURN(std::optional<int64_t> best_of,
                     f.Integer("best_of", 0, 1 << 20));
    if (best_of && *best_of != 1) {
      return FieldError("best_of",
                        absl::StrCat("must be 1 (got ", *best_of, ")"));
    }
    ASSIGN_OR_RETURN(std::optional<std::string> suffix, f.String("suffix"));
    if (suffix && !suffix->empty())
      return FieldError("suffix", "is not supported");
  }
  return absl::OkStatus();
}

absl::Status FillStop(const JsonFields& f, OpenAiRequest* out) {
  const Json* stop = f.Find("stop");
  if (stop == nullptr) return absl::OkStatus();
  SamplingParams* s = out->request.mutable_sampling();
  if (stop->is_string()) {
    s->add_stop(stop->get<std::string>());
    out->renames.emplace_back("sampling.stop[0]", "stop");
    return absl::OkStatus();
  }
  if (!stop->is_array())
    return TypeError("stop", "a string or an array of strings", *stop);
  for (size_t i = 0; i < stop->size(); ++i) {
    const Json& v = (*stop)[i];
    if (!v.is_string())
      return TypeError(absl::StrCat("stop[", i, "]"), "a string", v);
    s->add_stop(v.get<std::string>());
  }
  out->renames.emplace_back("sampling.stop", "stop");
  return absl::OkStatus();
}

// response_format: {"type": "text" | "json_object" | "json_schema",
// "json_schema": {"name", "schema", "strict"}} onto the constraint oneof.
absl::Status FillResponseFormat(const JsonFields& f, OpenAiRequest* out) {
  ASSIGN_OR_RETURN(const Json* format, f.Object("response_format"));
  if (format == nullptr) return absl::OkStatus();
  const JsonFields rf(*format, "response_format.");
  ASSIGN_OR_RETURN(std::optional<std::string> type, rf.String("type"));
  if (!type) return FieldError("response_format.type", "is required");
  SamplingParams* s = out->request.mutable_sampling();
  out->renames.emplace_back("sampling.json_object", "response_format");
  out->renames.emplace_back("sampling.json_schema",
                            "response_format.json_schema.schema");
  if (*type == "text") return absl::OkStatus();
  if (*type == "json_object") {
    s->set_json_object(true);
    return absl::OkStatus();
  }
  if (*type != "json_schema") {
    return FieldError("response_format.type",
                      absl::StrCat("must be text, json_object or json_schema "
                                   "(got '",
                                   *type, "')"));
  }
  ASSIGN_OR_RETURN(const Json* spec, rf.Object("json_schema"));
  if (spec == nullptr)
    return FieldError("response_format.json_schema", "is required");
  const JsonFields js(*spec, "response_format.json_schema.");
  const Json* schema = js.Find("schema");
  if (schema == nullptr)
    return FieldError("response_format.json_schema.schema", "is required");
  if (!schema->is_object() && !schema->is_boolean()) {
    return TypeError("response_format.json_schema.schema",
                     "a JSON Schema (an object)", *schema);
  }
  RETURN_IF_ERROR(js.String("name").status());
  RETURN_IF_ERROR(js.Bool("strict").status());
  s->set_json_schema(
      schema->dump(-1, ' ', false, Json::error_handler_t::replace));
  return absl::OkStatus();
}

// Lumen's extension: {"collections", "top_k", "min_score", "filter", "mode",
// "prompt_template"}.
absl::Status FillRag(const JsonFields& f, GenerateRequest* r) {
  ASSIGN_OR_RETURN(const Json* rag, f.Object("rag"));
  if (rag == nullptr) return absl::OkStatus();
  const JsonFields g(*rag, "rag.");
  lumen::v1::RagOptions* o = r->mutable_rag();
  ASSIGN_OR_RETURN(const Json* collections, g.Array("collections"));
  if (collections == nullptr || collections->empty())
    return FieldError("rag.collections", "must name at least one collection");
  for (size_t i = 0; i < collections->size(); ++i) {
    const Json& c = (*collections)[i];
    if (!c.is_string())
      return TypeError(absl::StrCat("rag.collections[", i, "]"), "a string", c);
    o->add_collections(c.get<std::string>());
  }
  ASSIGN_OR_RETURN(std::optional<int64_t> top_k,
                   g.Integer("top_k", 0, kMaxUint32));
  if (top_k) o->set_top_k(static_cast<uint32_t>(*top_k));
  ASSIGN_OR_RETURN(std::optional<double> min_score, g.Number("min_score"));
  if (min_score) o->set_min_score(*min_score);
  ASSIGN_OR_RETURN(const Json* filter, g.Object("filter"));
  if (filter != nullptr) {
    for (const auto& [key, value] : filter->items()) {
      if (!value.is_string()) {
        return TypeError(absl::StrCat("rag.filter.", key), "a string", value);
      }
      (*o->mutable_filter())[key] = value.get<std::string>();
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::string> mode, g.String("mode"));
  if (mode) {
    if (*mode == "hybrid") {
      o->set_mode(lumen::v1::SEARCH_MODE_HYBRID);
    } else if (*mode == "vector") {
      o->set_mode(lumen::v1::SEARCH_MODE_VECTOR);
    } else if (*mode == "keyword") {
      o->set_mode(lumen::v1::SEARCH_MODE_KEYWORD);
    } else {
      return FieldError("rag.mode",
                        absl::StrCat("must be hybrid, vector or keyword (got '",
                                     *mode, "')"));
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::string> tmpl,
                   g.String("prompt_template"));
  if (tmpl) o->set_prompt_template(*tmpl);
  return absl::OkStatus();
}

// Everything the two endpoints share: model, sampling, stop, streaming,
// response_format, Lumen's extensions.
absl::Status FillCommon(const JsonFields& f, OpenAiRequest* out) {
  RETURN_IF_ERROR(RejectUnsupported(f, out->endpoint));
  GenerateRequest& r = out->request;
  SamplingParams* s = r.mutable_sampling();
  ASSIGN_OR_RETURN(std::optional<std::string> model, f.String("model"));
  if (model) r.set_model(*model);

  // max_completion_tokens replaced max_tokens in OpenAI's chat API; the
  // newer name wins when both are sent.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    ASSIGN_OR_RETURN(std::optional<int64_t> v, f.Integer(name, 0, kMaxUint32));
    if (!v) continue;
    s->set_max_tokens(static_cast<uint32_t>(*v));
    out->renames.emplace_back("sampling.max_tokens", name);
  }
  ASSIGN_OR_RETURN(std::optional<double> temperature, f.Number("temperature"));
  if (temperature) s->set_temperature(static_cast<float>(*temperature));
  ASSIGN_OR_RETURN(std::optional<double> top_p, f.Number("top_p"));
  if (top_p) s->set_top_p(static_cast<float>(*top_p));
  ASSIGN_OR_RETURN(std::optional<double> presence,
                   f.Number("presence_penalty"));
  if (presence) s->set_presence_penalty(static_cast<float>(*presence));
  ASSIGN_OR_RETURN(std::optional<double> frequency,
                   f.Number("frequency_penalty"));
  if (frequency) s->set_frequency_penalty(static_cast<float>(*frequency));
  ASSIGN_OR_RETURN(std::optional<uint64_t> seed, f.Unsigned("seed"));
  if (seed) s->set_seed(*seed);
  RETURN_IF_ERROR(FillStop(f, out));
  RETURN_IF_ERROR(FillResponseFormat(f, out));

  // Lumen's extensions.
  ASSIGN_OR_RETURN(std::optional<int64_t> top_k,
                   f.Integer("top_k", 0, kMaxUint32));
  if (top_k) s->set_top_k(static_cast<uint32_t>(*top_k));
  ASSIGN_OR_RETURN(std::optional<double> min_p, f.Number("min_p"));
  if (min_p) s->set_min_p(static_cast<float>(*min_p));
  ASSIGN_OR_RETURN(std::optional<double> repetition,
                   f.Number("repetition_penalty"));
  if (repetition) s->set_repetition_penalty(static_cast<float>(*repetition));
  ASSIGN_OR_RETURN(std::optional<bool> ignore_eos, f.Bool("ignore_eos"));
  if (ignore_eos) s->set_ignore_eos(*ignore_eos);
  ASSIGN_OR_RETURN(std::optional<std::string> adapter, f.String("adapter"));
  if (adapter) r.set_adapter(*adapter);
  RETURN_IF_ERROR(FillRag(f, &r));

  ASSIGN_OR_RETURN(std::optional<bool> stream, f.Bool("stream"));
  out->stream = stream.value_or(false);
  ASSIGN_OR_RETURN(const Json* options, f.Object("stream_options"));
  if (options != nullptr) {
    if (!out->stream) {
      return FieldError("stream_options",
                        "is only allowed when stream is true");
    }
    ASSIGN_OR_RETURN(
        std::optional<bool> usage,
        JsonFields(*options, "stream_options.").Bool("include_usage"));
    out->include_usage = usage.value_or(false);
  }
  return absl::OkStatus();
}

// The text of a message's content: a string, or an array of text parts
// (joined with newlines, as vLLM does).
absl::StatusOr<std::string> MessageContent(const Json& content,
                                           const std::string& name) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    return TypeError(name, "a string or an array of content parts", content);
  std::string text;
  for (size_t j = 0; j < content.size(); ++j) {
    const std::string part_name = absl::StrCat(name, "[", j, "]");
    const Json& part = content[j];
    if (!part.is_object()) return TypeError(part_name, "an object", part);
    const JsonFields p(part, part_name + ".");
    ASSIGN_OR_RETURN(std::optional<std::string> type, p.String("type"));
    if (!type) return FieldError(part_name + ".type", "is required");
    if (*type != "text") {
      return FieldError(part_name + ".type",
                        absl::StrCat("'", *type,
                                     "' is not supported: Lumen's models "
                                     "read text parts only"));
    }
    ASSIGN_OR_RETURN(std::optional<std::string> part_text, p.String("text"));
    if (!part_text) return FieldError(part_name + ".text", "is required");
    if (j > 0) text += "\n";
    text += *part_text;
  }
  return text;
}

// tools, tool_choice and parallel_tool_calls, as JSON text for the shared
// request path (server/tool_calls.h), which validates them.
absl::Status FillTools(const JsonFields& f, GenerateRequest* r) {
  ASSIGN_OR_RETURN(const Json* tools, f.Array("tools"));
  if (tools != nullptr && !tools->empty()) {
    r->set_tools_json(
        tools->dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  if (const Json* choice = f.Find("tool_choice");
      choice != nullptr && !choice->is_null()) {
    r->set_tool_choice_json(
        choice->dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  ASSIGN_OR_RETURN(std::optional<bool> parallel, f.Bool("parallel_tool_calls"));
  if (parallel) r->set_parallel_tool_calls(*parallel);
  return absl::OkStatus();
}

absl::Status FillMessages(const JsonFields& f, GenerateRequest* r) {
  ASSIGN_OR_RETURN(const Json* messages, f.Array("messages"));
  if (messages == nullptr || messages->empty())
    return FieldError("messages", "must hold at least one message");
  for (size_t i = 0; i < messages->size(); ++i) {
    const std::string name = absl::StrCat("messages[", i, "]");
    const Json& m = (*messages)[i];
    if (!m.is_object()) return TypeError(name, "an object", m);
    const JsonFields mf(m, name + ".");
    ASSIGN_OR_RETURN(std::optional<std::string> role, mf.String("role"));
    if (!role) return FieldError(name + ".role", "is required");
    lumen::v1::ChatMessage* out = r->add_messages();
    // OpenAI's newer name for the system role (o1 and later models).
    out->set_role(*role == "developer" ? "system" : *role);
    // Tool calls travel as JSON text; the shared request path checks them
    // (arguments must be JSON text) and names the message.
    ASSIGN_OR_RETURN(const Json* tool_calls, mf.Array("tool_calls"));
    if (tool_calls != nullptr && !tool_calls->empty()) {
      out->set_tool_calls_json(
          tool_calls->dump(-1, ' ', false, Json::error_handler_t::replace));
    }
    ASSIGN_OR_RETURN(std::optional<std::string> tool_call_id,
                     mf.String("tool_call_id"));
    if (tool_call_id) out->set_tool_call_id(*tool_call_id);
    const Json* content = mf.Find("content");
    if (content == nullptr || content->is_null()) {
      // Only an assistant turn may come without content (OpenAI allows it
      // beside tool calls).
      if (*role != "assistant")
        return FieldError(name + ".content", "is required");
      continue;
    }
    ASSIGN_OR_RETURN(std::string text,
                     MessageContent(*content, name + ".content"));
    out->set_content(std::move(text));
  }
  return absl::OkStatus();
}

// prompt: a string, or token ids; an array of one string or of one token
// array is accepted as that one prompt.
absl::Status FillPrompt(const JsonFields& f, OpenAiRequest* out) {
  const Json* prompt = f.Find("prompt");
  if (prompt == nullptr) return FieldError("prompt", "is required");
  GenerateRequest& r = out->request;
  if (prompt->is_string()) {
    if (prompt->get_ref<const std::string&>().empty())
      return FieldError("prompt", "must not be empty");
    r.set_prompt(prompt->get<std::string>());
    return absl::OkStatus();
  }
  if (!prompt->is_array()) {
    return TypeError("prompt",
                     "a string, an array of token ids or an array of one "
                     "string",
                     *prompt);
  }
  if (prompt->empty()) return FieldError("prompt", "must not be empty");
  const Json* ids = prompt;
  std::string ids_name = "prompt";
  const Json& first = (*prompt)[0];
  if (first.is_string() || first.is_array()) {
    if (prompt->size() != 1) {
      return FieldError("prompt",
                        absl::StrCat("holds ", prompt->size(),
                                     " prompts; Lumen takes one prompt per "
                                     "request"));
    }
    if (first.is_string()) {
      if (first.get_ref<const std::string&>().empty())
        return FieldError("prompt[0]", "must not be empty");
      r.set_prompt(first.get<std::string>());
      out->renames.emplace_back("prompt", "prompt[0]");
      return absl::OkStatus();
    }
    ids = &first;
    ids_name = "prompt[0]";
    if (ids->empty()) return FieldError(ids_name, "must not be empty");
  }
  for (size_t i = 0; i < ids->size(); ++i) {
    const Json& id = (*ids)[i];
    const std::string name = absl::StrCat(ids_name, "[", i, "]");
    if (!id.is_number_integer()) return TypeError(name, "a token id", id);
    const int64_t v = id.is_number_unsigned()
                          ? static_cast<int64_t>(std::min<uint64_t>(
                                id.get<uint64_t>(), uint64_t{1} << 40))
                          : id.get<int64_t>();
    if (v < 0 || v > std::numeric_limits<int32_t>::max())
      return FieldError(name, absl::StrCat("= ", v, " is not a token id"));
    r.add_prompt_token_ids(static_cast<int32_t>(v));
  }
  out->renames.emplace_back("prompt_token_ids", ids_name);
  return absl::OkStatus();
}

}  // namespace

std::string OpenAiRequest::ParamOf(absl::string_view path) const {
  for (auto it = renames.rbegin(); it != renames.rend(); ++it) {
    const auto& [from, to] = *it;
    if (path == from) return to;
    if (absl::StartsWith(path, from) &&
        (path[from.size()] == '.' || path[from.size()] == '[')) {
      return absl::StrCat(to, path.substr(from.size()));
    }
  }
  absl::ConsumePrefix(&path, "sampling.");
  return std::string(path);
}

absl::StatusOr<OpenAiRequest> FromChatCompletion(const Json& body) {
  if (!body.is_object()) return TypeError("body", "a JSON object", body);
  OpenAiRequest out;
  out.endpoint = Endpoint::kChatCompletions;
  const JsonFields f(body);
  RETURN_IF_ERROR(FillMessages(f, &out.request));
  out.renames.emplace_back("prompt", "messages");
  RETURN_IF_ERROR(FillTools(f, &out.request));
  RETURN_IF_ERROR(FillCommon(f, &out));
  // logprobs: true returns the chosen tokens' log-probabilities and
  // top_logprobs alternatives of each. The engine reports logprobs with at
  // least one alternative, so 0 alternatives asks for one and drops it.
  ASSIGN_OR_RETURN(std::optional<bool> logprobs, f.Bool("logprobs"));
  ASSIGN_OR_RETURN(std::optional<int64_t> top,
                   f.Integer("top_logprobs", 0, kMaxUint32));
  // Clients that always send "top_logprobs": 0 are not refused.
  if (top.value_or(0) > 0 && !logprobs.value_or(false))
    return FieldError("top_logprobs", "requires logprobs: true");
  out.logprobs = logprobs.value_or(false);
  out.top_logprobs =
      static_cast<int>(std::min<int64_t>(top.value_or(0), 1 << 20));
  if (out.logprobs) {
    out.request.mutable_sampling()->set_logprobs(
        static_cast<uint32_t>(std::max(1, out.top_logprobs)));
  }
  out.renames.emplace_back("sampling.logprobs", "top_logprobs");
  return out;
}

absl::StatusOr<OpenAiRequest> FromCompletion(const Json& body) {
  if (!body.is_object()) return TypeError("body", "a JSON object", body);
  OpenAiRequest out;
  out.endpoint = Endpoint::kCompletions;
  const JsonFields f(body);
  RETURN_IF_ERROR(FillPrompt(f, &out));
  RETURN_IF_ERROR(FillCommon(f, &out));
  // logprobs: N returns the chosen tokens' log-probabilities and N
  // alternatives each (0: the chosen tokens only).
  ASSIGN_OR_RETURN(std::optional<int64_t> logprobs,
                   f.Integer("logprobs", 0, kMaxUint32));
  if (logprobs) {
    out.logprobs = true;
    out.top_logprobs = static_cast<int>(std::min<int64_t>(*logprobs, 1 << 20));
    out.request.mutable_sampling()->set_logprobs(
        static_cast<uint32_t>(std::max(1, out.top_logprobs)));
  }
  out.renames.emplace_back("sampling.logprobs", "logprobs");
  return out;
}

}  // namespace lumen::server::http
