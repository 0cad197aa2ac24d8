#include "chat/chat_messages.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace lumen::chat {

absl::Status FieldError(const std::string& field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", problem));
}

namespace {

// content: a string, null, or [{"type": "text", "text": "..."}...].
absl::Status NormalizeContent(const std::string& field,
                              const MessageFormat& format, Json* content) {
  if (content->is_string()) return absl::OkStatus();
  if (content->is_null()) {
    if (!format.null_content) *content = "";
    return absl::OkStatus();
  }
  if (!content->is_array()) {
    return FieldError(field, "must be a string, null or a list of text parts");
  }
  std::string joined;
  for (size_t j = 0; j < content->size(); ++j) {
    const Json& part = (*content)[j];
    const std::string part_field = absl::StrCat(field, "[", j, "]");
    if (!part.is_object()) return FieldError(part_field, "must be an object");
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) {
      return FieldError(part_field + ".type", "must be a string");
    }
    if (type->get_ref<const std::string&>() != "text") {
      return FieldError(part_field + ".type",
                        absl::StrCat("'", type->get_ref<const std::string&>(),
                                     "' is not supported (text parts only)"));
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) {
      return FieldError(part_field + ".text", "must be a string");
    }
    // llama.cpp joins the parts with newlines.
    if (j > 0) joined += '\n';
    joined += text->get_ref<const std::string&>();
  }
  if (!format.typed_content) *content = std::move(joined);
  return absl::OkStatus();
}

absl::Status NormalizeToolCalls(const std::string& field, Json* calls) {
  if (!calls->is_array()) return FieldError(field, "must be a list");
  for (size_t j = 0; j < calls->size(); ++j) {
    Json& call = (*calls)[j];
    const std::string call_field = absl::StrCat(field, "[", j, "]");
    if (!call.is_object()) return FieldError(call_field, "must be an object");
    if (auto id = call.find("id"); id != call.end() && !id->is_string()) {
      return FieldError(call_field + ".id", "must be a string");
    }
    if (!call.contains("type")) call["type"] = "function";
    auto function = call.find("function");
    if (function == call.end() || !function->is_object()) {
      return FieldError(call_field + ".function", "must be an object");
    }
    auto name = function->find("name");
    if (name == function->end() || !name->is_string() ||
        name->get_ref<const std::string&>().empty()) {
      return FieldError(call_field + ".function.name",
                        "must be a non-empty string");
    }
    auto arguments = function->find("arguments");
    if (arguments == function->end() || arguments->is_null()) {
      (*function)["arguments"] = Json::object();
    } else if (arguments->is_string()) {
      // The OpenAI API sends arguments as a JSON string; templates index
      // into them, so they get the parsed object (as llama.cpp does).
      Json parsed = Json::parse(arguments->get_ref<const std::string&>(),
                                nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) {
        return FieldError(call_field + ".function.arguments",
                          "is not valid JSON");
      }
      *arguments = std::move(parsed);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Json> NormalizeMessages(const Json& messages,
                                       const MessageFormat& format) {
  if (!messages.is_array() || messages.empty()) {
    return absl::InvalidArgumentError("messages must be a non-empty list");
  }
  Json out = messages;
  for (size_t i = 0; i < out.size(); ++i) {
    Json& m = out[i];
    const std::string field = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return FieldError(field, "must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string() ||
        role->get_ref<const std::string&>().empty()) {
      return FieldError(field + ".role", "must be a non-empty string");
    }
    if (!m.contains("content")) m["content"] = nullptr;
    RETURN_IF_ERROR(
        NormalizeContent(field + ".content", format, &m["content"]));
    if (auto calls = m.find("tool_calls"); calls != m.end()) {
      if (calls->is_null()) {
        m.erase("tool_calls");
      } else {
        RETURN_IF_ERROR(NormalizeToolCalls(field + ".tool_calls", &*calls));
      }
    }
    for (const char* key : {"tool_call_id", "name"}) {
      if (auto v = m.find(key); v != m.end() && !v->is_string()) {
        return FieldError(absl::StrCat(field, ".", key), "must be a string");
      }
    }
  }
  return out;
}

}  // namespace lumen::chat
