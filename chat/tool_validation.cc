#include "chat/tool_validation.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace lumen::chat {

namespace {

constexpr int kMaxSchemaDepth = 32;

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsSchemaType(const Json& t) {
  if (!t.is_string()) return false;
  const std::string& s = t.get_ref<const std::string&>();
  return s == "object" || s == "array" || s == "string" || s == "number" ||
         s == "integer" || s == "boolean" || s == "null";
}

absl::Status ValidateSchema(const Json& schema, const std::string& field,
                            int depth);

absl::Status ValidateSchemaList(const Json& list, const std::string& field,
                                int depth) {
  if (!list.is_array() || list.empty()) {
    return FieldError(field, "must be a non-empty list of schemas");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    RETURN_IF_ERROR(
        ValidateSchema(list[i], absl::StrCat(field, "[", i, "]"), depth + 1));
  }
  return absl::OkStatus();
}

absl::Status ValidateSchemaMap(const Json& map, const std::string& field,
                               int depth) {
  if (!map.is_object())
    return FieldError(field, "must be an object of schemas");
  for (auto it = map.begin(); it != map.end(); ++it) {
    RETURN_IF_ERROR(ValidateSchema(
        it.value(), absl::StrCat(field, ".", it.key()), depth + 1));
  }
  return absl::OkStatus();
}

// The keywords a tool's parameter schema uses, each of the right kind.
absl::Status ValidateSchema(const Json& schema, const std::string& field,
                            int depth) {
  if (depth > kMaxSchemaDepth) {
    return FieldError(field, absl::StrCat("is nested deeper than ",
                                          kMaxSchemaDepth, " levels"));
  }
  if (schema.is_boolean()) return absl::OkStatus();
  if (!schema.is_object())
    return FieldError(field, "must be a JSON Schema object");
  if (auto t = schema.find("type"); t != schema.end()) {
    if (t->is_array()) {
      if (t->empty()) return FieldError(field + ".type", "must not be empty");
      for (const Json& e : *t) {
        if (!IsSchemaType(e)) {
          return FieldError(field + ".type",
                            "lists an unknown JSON Schema type");
        }
      }
    } else if (!IsSchemaType(*t)) {
      return FieldError(
          field + ".type",
          "must be object, array, string, number, integer, boolean or "
          "null");
    }
  }
  if (auto p = schema.find("properties"); p != schema.end()) {
    RETURN_IF_ERROR(ValidateSchemaMap(*p, field + ".properties", depth));
  }
  for (const char* key : {"$defs", "definitions", "patternProperties"}) {
    if (auto m = schema.find(key); m != schema.end()) {
      RETURN_IF_ERROR(
          ValidateSchemaMap(*m, absl::StrCat(field, ".", key), depth));
    }
  }
  if (auto r = schema.find("required"); r != schema.end()) {
    if (!r->is_array())
      return FieldError(field + ".required", "must be a list");
    std::set<std::string> seen;
    auto properties = schema.find("properties");
    for (size_t i = 0; i < r->size(); ++i) {
      const Json& name = (*r)[i];
      const std::string item = absl::StrCat(field, ".required[", i, "]");
      if (!name.is_string()) return FieldError(item, "must be a string");
      if (!seen.insert(name.get<std::string>()).second) {
        return FieldError(item, "repeats a property");
      }
      if (properties != schema.end() && properties->is_object() &&
          !properties->contains(name.get<std::string>())) {
        return FieldError(item, absl::StrCat("names '", name.get<std::string>(),
                                             "', which is not in properties"));
      }
    }
  }
  if (auto items = schema.find("items"); items != schema.end()) {
    if (items->is_array()) {
      RETURN_IF_ERROR(ValidateSchemaList(*items, field + ".items", depth));
    } else {
      RETURN_IF_ERROR(ValidateSchema(*items, field + ".items", depth + 1));
    }
  }
  for (const char* key : {"additionalProperties", "not", "if", "then", "else",
                          "contains", "propertyNames", "additionalItems"}) {
    if (auto s = schema.find(key); s != schema.end()) {
      RETURN_IF_ERROR(
          ValidateSchema(*s, absl::StrCat(field, ".", key), depth + 1));
    }
  }
  for (const char* key : {"anyOf", "oneOf", "allOf", "prefixItems"}) {
    if (auto s = schema.find(key); s != schema.end()) {
      RETURN_IF_ERROR(
          ValidateSchemaList(*s, absl::StrCat(field, ".", key), depth));
    }
  }
  if (auto e = schema.find("enum");
      e != schema.end() && (!e->is_array() || e->empty())) {
    return FieldError(field + ".enum", "must be a non-empty list");
  }
  for (const char* key : {"minimum", "maximum", "exclusiveMinimum",
                          "exclusiveMaximum", "multipleOf"}) {
    if (auto n = schema.find(key); n != schema.end() && !n->is_number()) {
      return FieldError(absl::StrCat(field, ".", key), "must be a number");
    }
  }
  for (const char* key : {"minLength", "maxLength", "minItems", "maxItems",
                          "minProperties", "maxProperties"}) {
    if (auto n = schema.find(key);
        n != schema.end() &&
        !(n->is_number_unsigned() ||
          (n->is_number_integer() && n->get<int64_t>() >= 0))) {
      return FieldError(absl::StrCat(field, ".", key),
                        "must be a non-negative integer");
    }
  }
  for (const char* key :
       {"pattern", "format", "$ref", "description", "title"}) {
    if (auto s = schema.find(key); s != schema.end() && !s->is_string()) {
      return FieldError(absl::StrCat(field, ".", key), "must be a string");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTools(const Json& tools) {
  if (tools.is_null()) return absl::OkStatus();
  if (!tools.is_array()) return FieldError("tools", "must be a list");
  std::vector<std::string> names;
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& tool = tools[i];
    const std::string field = absl::StrCat("tools[", i, "]");
    if (!tool.is_object()) return FieldError(field, "must be an object");
    auto type = tool.find("type");
    if (type == tool.end() || !type->is_string() ||
        type->get_ref<const std::string&>() != "function") {
      return FieldError(field + ".type",
                        "must be \"function\" (only function tools "
                        "are supported)");
    }
    auto function = tool.find("function");
    if (function == tool.end() || !function->is_object()) {
      return FieldError(field + ".function", "must be an object");
    }
    auto name = function->find("name");
    if (name == function->end() || !name->is_string() ||
        !ValidName(name->get_ref<const std::string&>())) {
      return FieldError(field + ".function.name",
                        "must be 1 to 64 letters, digits, '_' or '-'");
    }
    const std::string& n = name->get_ref<const std::string&>();
    for (size_t j = 0; j < names.size(); ++j) {
      if (names[j] == n) {
        return FieldError(field + ".function.name",
                          absl::StrCat("'", n, "' duplicates tools[", j, "]"));
      }
    }
    names.push_back(n);
    if (auto d = function->find("description");
        d != function->end() && !d->is_string()) {
      return FieldError(field + ".function.description", "must be a string");
    }
    if (auto p = function->find("parameters");
        p != function->end() && !p->is_null()) {
      const std::string pfield = field + ".function.parameters";
      if (!p->is_object())
        return FieldError(pfield, "must be a JSON Schema object");
      if (auto t = p->find("type");
          t != p->end() &&
          (!t->is_string() || t->get_ref<const std::string&>() != "object")) {
        return FieldError(pfield + ".type", "must be \"object\"");
      }
      RETURN_IF_ERROR(ValidateSchema(*p, pfield, 0));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ToolChoice> ParseToolChoice(const Json& tool_choice,
                                           const Json& tools) {
  const bool has_tools = tools.is_array() && !tools.empty();
  ToolChoice choice;
  if (tool_choice.is_null()) {
    choice.mode = has_tools ? ToolChoice::Mode::kAuto : ToolChoice::Mode::kNone;
    return choice;
  }
  if (tool_choice.is_string()) {
    const std::string& s = tool_choice.get_ref<const std::string&>();
    if (s == "none") {
      choice.mode = ToolChoice::Mode::kNone;
      return choice;
    }
    if (s != "auto" && s != "required") {
      return FieldError("tool_choice",
                        absl::StrCat("'", s,
                                     "' is not auto, none, required or a "
                                     "{\"type\": \"function\", ...} object"));
    }
    if (!has_tools) {
      if (s == "auto") {
        choice.mode = ToolChoice::Mode::kNone;
        return choice;
      }
      return FieldError("tool_choice", "is 'required' but no tools are given");
    }
    choice.mode =
        s == "auto" ? ToolChoice::Mode::kAuto : ToolChoice::Mode::kRequired;
    return choice;
  }
  if (!tool_choice.is_object()) {
    return FieldError("tool_choice", "must be a string or an object");
  }
  auto type = tool_choice.find("type");
  if (type == tool_choice.end() || !type->is_string() ||
      type->get_ref<const std::string&>() != "function") {
    return FieldError("tool_choice.type", "must be \"function\"");
  }
  auto function = tool_choice.find("function");
  if (function == tool_choice.end() || !function->is_object() ||
      !function->contains("name") || !(*function)["name"].is_string()) {
    return FieldError("tool_choice.function.name", "must be a string");
  }
  const std::string name = (*function)["name"].get<std::string>();
  bool known = false;
  if (has_tools) {
    for (const Json& tool : tools) {
      auto f = tool.find("function");
      if (f == tool.end() || !f->is_object()) continue;
      auto n = f->find("name");
      if (n != f->end() && n->is_string() && n->get<std::string>() == name) {
        known = true;
      }
    }
  }
  if (!known) {
    return FieldError("tool_choice.function.name",
                      absl::StrCat("'", name, "' is not one of the tools"));
  }
  choice.mode = ToolChoice::Mode::kFunction;
  choice.function = name;
  return choice;
}

absl::Status ValidateToolMessages(const Json& messages) {
  if (!messages.is_array()) return FieldError("messages", "must be a list");
  std::set<std::string> call_ids;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    if (!m.is_object()) continue;  // NormalizeMessages reports it
    const std::string field = absl::StrCat("messages[", i, "]");
    auto role_it = m.find("role");
    const std::string role = role_it != m.end() && role_it->is_string()
                                 ? role_it->get<std::string>()
                                 : std::string();
    if (role == "assistant") {
      auto calls = m.find("tool_calls");
      if (calls == m.end() || !calls->is_array()) continue;
      for (size_t j = 0; j < calls->size(); ++j) {
        const Json& call = (*calls)[j];
        if (!call.is_object()) continue;
        auto id = call.find("id");
        if (id == call.end() || !id->is_string() ||
            id->get_ref<const std::string&>().empty()) {
          return FieldError(absl::StrCat(field, ".tool_calls[", j, "].id"),
                            "must be a non-empty string");
        }
        call_ids.insert(id->get<std::string>());
      }
    } else if (role == "tool") {
      auto id = m.find("tool_call_id");
      if (id == m.end() || !id->is_string()) {
        return FieldError(field + ".tool_call_id",
                          "is required for a tool message");
      }
      if (!call_ids.contains(id->get<std::string>())) {
        return FieldError(field + ".tool_call_id",
                          absl::StrCat("'", id->get<std::string>(),
                                       "' matches no tool call of an earlier "
                                       "assistant message"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace lumen::chat
