#include "server/tool_calls.h"

#include <random>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "engine/constrained/gbnf_text.h"
#include "engine/constrained/json_schema_to_gbnf.h"
#include "server/request_builder.h"

namespace lumen::server {

namespace {

using chat::Json;
using chat::ToolCallFormat;
using chat::ToolChoice;
using engine::constrained::GbnfLiteral;

// The chat layer's errors start with the field they name ("tools[1].type
// must be ..."): that field becomes the payload, as FieldError sets it.
absl::Status Named(const absl::Status& status) {
  if (status.ok() || !FieldOf(status).empty()) return status;
  absl::Status out = status;
  const absl::string_view message = status.message();
  out.SetPayload(kFieldPayload,
                 absl::Cord(message.substr(0, message.find(' '))));
  return out;
}

absl::StatusOr<Json> ParseJsonText(const std::string& text,
                                   const std::string& field) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return FieldError(field, "is not valid JSON");
  return j;
}

// A tool's parameter schema is placed inside the call schema (at the JSON
// pointer `base`), so its local references, written against its own root,
// are moved there: "#/$defs/x" becomes "#<base>/$defs/x" and "#" (a
// recursive reference to the parameters) "#<base>". Walks the schema
// positions only (never enum/const values). A reference that is not a JSON
// pointer into the document (a remote URI, an anchor) cannot be followed.
absl::Status RebaseRefs(Json& schema, const std::string& base,
                        const std::string& tool) {
  if (!schema.is_object()) return absl::OkStatus();
  if (auto ref = schema.find("$ref"); ref != schema.end() && ref->is_string()) {
    const std::string text = ref->get<std::string>();
    if (text != "#" && !absl::StartsWith(text, "#/")) {
      return FieldError(
          "tool_choice",
          absl::StrCat("cannot constrain tool '", tool, "': its parameters' ",
                       "$ref '", text,
                       "' is not local (only references into the schema "
                       "itself, '#', '#/$defs/...' or '#/definitions/...', "
                       "are followed)"));
    }
    *ref = absl::StrCat("#", base, text.substr(1));
  }
  for (const char* key :
       {"properties", "$defs", "definitions", "patternProperties"}) {
    if (auto m = schema.find(key); m != schema.end() && m->is_object()) {
      for (Json& sub : *m) RETURN_IF_ERROR(RebaseRefs(sub, base, tool));
    }
  }
  for (const char* key :
       {"items", "additionalProperties", "not", "if", "then", "else",
        "contains", "propertyNames", "additionalItems", "anyOf", "oneOf",
        "allOf", "prefixItems"}) {
    auto s = schema.find(key);
    if (s == schema.end()) continue;
    if (s->is_array()) {
      for (Json& sub : *s) RETURN_IF_ERROR(RebaseRefs(sub, base, tool));
    } else {
      RETURN_IF_ERROR(RebaseRefs(*s, base, tool));
    }
  }
  return absl::OkStatus();
}

// {"name": N, ARGS: <parameters>} for every tool the choice allows; `base`
// is the JSON pointer where the result sits in the whole schema (its
// parameters' references are rebased onto it).
absl::StatusOr<Json> CallSchema(const ToolRequest& tool,
                                absl::string_view args_key,
                                absl::string_view base = "") {
  std::vector<std::pair<std::string, Json>> chosen;  // name, parameters
  for (const Json& t : tool.tools) {
    const Json& f = t["function"];
    const std::string name = f["name"].get<std::string>();
    if (tool.choice.mode == ToolChoice::Mode::kFunction &&
        name != tool.choice.function) {
      continue;
    }
    Json params = Json{{"type", "object"}};
    if (auto p = f.find("parameters"); p != f.end() && !p->is_null()) {
      params = *p;
    }
    chosen.emplace_back(name, std::move(params));
  }
  Json alternatives = Json::array();
  for (size_t i = 0; i < chosen.size(); ++i) {
    auto& [name, params] = chosen[i];
    const std::string at =
        chosen.size() == 1
            ? absl::StrCat(base, "/properties/", args_key)
            : absl::StrCat(base, "/anyOf/", i, "/properties/", args_key);
    RETURN_IF_ERROR(RebaseRefs(params, at, name));
    Json properties = Json::object();
    properties["name"] = Json{{"const", name}};
    properties[std::string(args_key)] = std::move(params);
    alternatives.push_back(
        Json{{"type", "object"},
             {"properties", std::move(properties)},
             {"required", Json::array({"name", std::string(args_key)})},
             {"additionalProperties", false}});
  }
  if (alternatives.size() == 1) return alternatives[0];
  return Json{{"anyOf", std::move(alternatives)}};
}

// The schema's grammar with its start rule renamed to `rule` (nothing refers
// back to the root: the parameters' references are rebased below it).
// `entries` and `strings_without_lt` as JsonSchemaToGbnf takes them.
absl::StatusOr<std::string> SchemaRule(
    const Json& schema, absl::string_view rule,
    const std::vector<std::pair<std::string, std::string>>& entries = {},
    bool strings_without_lt = false) {
  absl::StatusOr<std::string> gbnf = engine::constrained::JsonSchemaToGbnf(
      schema.dump(), entries, strings_without_lt);
  if (!gbnf.ok()) {
    return FieldError("tool_choice",
                      absl::StrCat("cannot constrain the tool call: ",
                                   gbnf.status().message()));
  }
  constexpr absl::string_view kRoot = "root ::= ";
  if (!absl::StartsWith(*gbnf, kRoot)) {
    return absl::InternalError("json schema grammar does not start at root");
  }
  return absl::StrCat(rule, " ::= ", gbnf->substr(kRoot.size()));
}

}  // namespace

absl::StatusOr<ToolRequest> ParseToolRequest(
    const lumen::v1::GenerateRequest& request) {
  ToolRequest out;
  if (!request.tools_json().empty()) {
    ASSIGN_OR_RETURN(out.tools, ParseJsonText(request.tools_json(), "tools"));
    RETURN_IF_ERROR(Named(chat::ValidateTools(out.tools)));
    if (out.tools.is_array() && out.tools.empty()) out.tools = Json();
  }
  Json choice;
  if (!request.tool_choice_json().empty()) {
    ASSIGN_OR_RETURN(choice,
                     ParseJsonText(request.tool_choice_json(), "tool_choice"));
  }
  absl::StatusOr<ToolChoice> parsed = chat::ParseToolChoice(choice, out.tools);
  if (!parsed.ok()) return Named(parsed.status());
  out.choice = std::move(*parsed);
  out.parallel =
      !request.has_parallel_tool_calls() || request.parallel_tool_calls();
  if ((out.choice.mode == ToolChoice::Mode::kRequired ||
       out.choice.mode == ToolChoice::Mode::kFunction) &&
      request.sampling().constraint_case() !=
          lumen::v1::SamplingParams::CONSTRAINT_NOT_SET) {
    return FieldError("tool_choice",
                      "cannot require a tool call together with an output "
                      "constraint (response_format)");
  }
  return out;
}

absl::StatusOr<Json> ChatMessagesJson(
    const lumen::v1::GenerateRequest& request) {
  Json messages = Json::array();
  for (int i = 0; i < request.messages_size(); ++i) {
    const lumen::v1::ChatMessage& m = request.messages(i);
    Json message = {{"role", m.role()}, {"content", m.content()}};
    if (!m.tool_calls_json().empty()) {
      const std::string field = absl::StrCat("messages[", i, "].tool_calls");
      ASSIGN_OR_RETURN(Json calls, ParseJsonText(m.tool_calls_json(), field));
      if (!calls.is_array()) return FieldError(field, "must be a list");
      if (m.role() != "assistant") {
        return FieldError(field, "is only allowed in assistant messages");
      }
      // An assistant turn that only calls tools has no content.
      if (m.content().empty()) message["content"] = nullptr;
      message["tool_calls"] = std::move(calls);
    }
    if (!m.tool_call_id().empty()) message["tool_call_id"] = m.tool_call_id();
    messages.push_back(std::move(message));
  }
  // Arguments must be JSON text (a template prints them as objects); the
  // normalized form is the chat template's to compute again.
  RETURN_IF_ERROR(
      Named(chat::NormalizeMessages(messages, chat::MessageFormat{}).status()));
  RETURN_IF_ERROR(Named(chat::ValidateToolMessages(messages)));
  return messages;
}

// Qwen3-Coder's calls as its template writes them:
//   <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n
//   ...</function>\n</tool_call>
// with the tool's declared parameters (required ones first, then the
// optional ones, each in declaration order) and each VALUE the JSON value
// its schema allows. A string is written as a JSON string ("Paris"), which
// the parser reads back as the same string: raw text could not be told
// from a number or an object. Strings hold no raw '<' (\u003c instead), so
// no value can close its parameter or call early.
absl::StatusOr<std::string> Qwen3CoderGrammar(const ToolRequest& tool) {
  ASSIGN_OR_RETURN(Json call, CallSchema(tool, "arguments"));
  const bool one = !call.contains("anyOf");
  const Json alternatives = one ? Json::array({call}) : call["anyOf"];
  std::vector<std::pair<std::string, std::string>> values;  // rule, pointer
  std::vector<std::string> functions;
  for (size_t i = 0; i < alternatives.size(); ++i) {
    const Json& properties = alternatives[i]["properties"];
    const std::string name = properties["name"]["const"].get<std::string>();
    const Json& parameters = properties["arguments"];
    const std::string base = absl::StrCat(one ? "" : absl::StrCat("/anyOf/", i),
                                          "/properties/arguments/properties/");
    if (parameters.contains("$ref") || parameters.contains("anyOf") ||
        parameters.contains("oneOf")) {
      return FieldError(
          "tool_choice",
          absl::StrCat("cannot constrain the tool call: the parameters of '",
                       name,
                       "' are not one object schema with properties, which "
                       "Qwen3-Coder's format needs"));
    }
    std::vector<std::string> required;
    if (auto r = parameters.find("required"); r != parameters.end()) {
      for (const Json& key : *r) {
        if (key.is_string()) required.push_back(key.get<std::string>());
      }
    }
    std::string required_part, optional_part;
    if (auto p = parameters.find("properties");
        p != parameters.end() && p->is_object()) {
      for (const auto& [key, schema] : p->items()) {
        // The parser reads a name up to '>' and trims spaces around it.
        if (key.empty() || key != absl::StripAsciiWhitespace(key) ||
            key.find_first_of("<>\n\r") != std::string::npos) {
          return FieldError(
              "tool_choice",
              absl::StrCat("cannot constrain the tool call: parameter name '",
                           key, "' of '", name,
                           "' has no form in Qwen3-Coder's format (empty, "
                           "spaces around it, or '<', '>', a line break)"));
        }
        std::string pointer_key;
        for (char c : key) {
          if (c == '~') {
            pointer_key += "~0";
          } else if (c == '/') {
            pointer_key += "~1";
          } else {
            pointer_key += c;
          }
        }
        const std::string rule = absl::StrCat("lumen-value-", values.size());
        values.emplace_back(rule, base + pointer_key);
        const std::string parameter =
            absl::StrCat(GbnfLiteral(absl::StrCat("<parameter=", key, ">\n")),
                         " ", rule, " ", GbnfLiteral("\n</parameter>\n"));
        if (absl::c_linear_search(required, key)) {
          absl::StrAppend(&required_part, " ", parameter);
        } else {
          absl::StrAppend(&optional_part, " (", parameter, ")?");
        }
      }
    }
    functions.push_back(absl::StrCat(
        GbnfLiteral(absl::StrCat("<function=", name, ">\n")), required_part,
        optional_part, " ", GbnfLiteral("</function>")));
  }
  // The schema's own start rule (the call as JSON) is not used.
  ASSIGN_OR_RETURN(std::string values_gbnf,
                   SchemaRule(call, "lumen-json-call", values,
                              /*strings_without_lt=*/true));
  const std::string one_call = absl::StrCat(
      GbnfLiteral("<tool_call>\n"), " (", absl::StrJoin(functions, " | "), ") ",
      GbnfLiteral("\n</tool_call>"));
  return absl::StrCat(
      "root ::= lumen-xml-call",
      tool.parallel ? absl::StrCat(" (", GbnfLiteral("\n"), " lumen-xml-call)*")
                    : "",
      "\nlumen-xml-call ::= ", one_call, "\n", values_gbnf);
}

absl::StatusOr<std::string> ToolCallGrammar(ToolCallFormat format,
                                            const ToolRequest& tool) {
  if (tool.choice.mode != ToolChoice::Mode::kRequired &&
      tool.choice.mode != ToolChoice::Mode::kFunction) {
    return absl::InternalError("tool_choice does not require a call");
  }
  const bool many = tool.parallel;
  switch (format) {
    case ToolCallFormat::kGeneric: {
      // {"name": ..., "arguments": {...}}, or {"tool_calls": [...]} for
      // several: the whole reply is one JSON document.
      ASSIGN_OR_RETURN(Json call,
                       CallSchema(tool, "arguments",
                                  many ? "/properties/tool_calls/items" : ""));
      Json schema = call;
      if (many) {
        schema =
            Json{{"type", "object"},
                 {"properties",
                  {{"tool_calls",
                    {{"type", "array"}, {"items", call}, {"minItems", 1}}}}},
                 {"required", {"tool_calls"}},
                 {"additionalProperties", false}};
      }
      return SchemaRule(schema, "root");
    }
    case ToolCallFormat::kHermes: {
      ASSIGN_OR_RETURN(Json call, CallSchema(tool, "arguments"));
      ASSIGN_OR_RETURN(std::string body, SchemaRule(call, "lumen-call-body"));
      const std::string one =
          absl::StrCat(GbnfLiteral("<tool_call>\n"), " lumen-call-body ",
                       GbnfLiteral("\n</tool_call>"));
      return absl::StrCat(
          "root ::= ", one,
          many ? absl::StrCat(" (", GbnfLiteral("\n"), " ", one, ")*") : "",
          "\n", body);
    }
    case ToolCallFormat::kLlama3: {
      // One {"name", "parameters"} object as the whole reply (Llama 3.1
      // writes one call per turn).
      ASSIGN_OR_RETURN(Json call, CallSchema(tool, "parameters"));
      return SchemaRule(call, "root");
    }
    case ToolCallFormat::kMistral:
    case ToolCallFormat::kGranite: {
      ASSIGN_OR_RETURN(Json call, CallSchema(tool, "arguments"));
      ASSIGN_OR_RETURN(std::string body, SchemaRule(call, "lumen-call-body"));
      const absl::string_view trigger =
          format == ToolCallFormat::kMistral ? "[TOOL_CALLS]" : "<|tool_call|>";
      return absl::StrCat(
          "root ::= ", GbnfLiteral(absl::StrCat(trigger, "[")),
          " lumen-call-body",
          many ? absl::StrCat(" (", GbnfLiteral(", "), " lumen-call-body)*")
               : "",
          " ", GbnfLiteral("]"), "\n", body);
    }
    case ToolCallFormat::kQwen3CoderXml:
      return Qwen3CoderGrammar(tool);
  }
  return absl::InternalError("unknown tool-call format");
}

ToolTrigger ToolCallTrigger(ToolCallFormat format, bool parallel) {
  switch (format) {
    case ToolCallFormat::kHermes:
    case ToolCallFormat::kQwen3CoderXml:
      return {"<tool_call>", false};
    case ToolCallFormat::kMistral:
      return {"[TOOL_CALLS]", false};
    case ToolCallFormat::kGranite:
      return {"<|tool_call|>", false};
    case ToolCallFormat::kLlama3:
      return {"{\"name\"", true};
    case ToolCallFormat::kGeneric:
      return {parallel ? "{\"tool_calls\"" : "{\"name\"", true};
  }
  return {};
}

std::string NewToolCallId(ToolCallFormat format) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::uniform_int_distribution<int> pick(0, sizeof(kAlphabet) - 2);
  const bool mistral = format == ToolCallFormat::kMistral;
  std::string id = mistral ? "" : "call_";
  for (int i = 0; i < (mistral ? 9 : 24); ++i) id += kAlphabet[pick(random)];
  return id;
}

chat::ParsedOutput ToolCallOutput::WithIds(chat::ParsedOutput parsed) {
  for (chat::ToolCall& piece : parsed.tool_calls) {
    if (piece.name.empty()) continue;  // a later piece of a call
    if (piece.id.empty()) piece.id = NewToolCallId(format_);
    ++calls_;
  }
  return parsed;
}

chat::ParsedOutput ToolCallOutput::Push(absl::string_view text) {
  return WithIds(parser_.Push(text));
}

chat::ParsedOutput ToolCallOutput::Finish() {
  return WithIds(parser_.Finish());
}

chat::ParsedOutput ToolCallOutput::PushAll(absl::string_view text) {
  chat::ParsedOutput all;
  for (chat::ParsedOutput part : {Push(text), Finish()}) {
    all.content += part.content;
    for (chat::ToolCall& piece : part.tool_calls)
      chat::MergeToolCall(&all.tool_calls, std::move(piece));
  }
  return all;
}

std::string ToolCallOutput::FinishReason(
    absl::string_view engine_reason) const {
  if (calls_ > 0 && !parser_.unfinished()) return "tool_calls";
  return std::string(engine_reason);
}

}  // namespace lumen::server
