#include "server/http/json_fields.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/request_builder.h"

namespace lumen::server::http {

absl::StatusOr<Json> ParseJson(absl::string_view text, int max_depth) {
  int deepest = 0;
  // The parser calls back at every value with its depth; it cannot stop
  // early, so the depth is checked once parsing is done (the parser itself
  // is iterative and the value's destructor is too).
  Json::parser_callback_t track = [&deepest](int depth, Json::parse_event_t,
                                             Json&) {
    if (depth > deepest) deepest = depth;
    return true;
  };
  Json value;
  try {
    value = Json::parse(text.begin(), text.end(), track);
  } catch (const Json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1,
    // column 9: syntax error ..."; keep what follows the bracket.
    std::string what = e.what();
    if (size_t end = what.find("] "); end != std::string::npos)
      what = what.substr(end + 2);
    return absl::InvalidArgumentError(
        absl::StrCat("the body is not valid JSON: ", what));
  }
  // The outermost value is at depth 0.
  if (deepest + 1 > max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat("the body nests JSON deeper than ", max_depth, " levels"));
  }
  return value;
}

const char* JsonTypeName(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string:
      return "string";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::array:
      return "array";
    case Json::value_t::object:
      return "object";
    case Json::value_t::null:
    case Json::value_t::discarded:
      return "null";
    case Json::value_t::binary:
      return "binary";
  }
  return "unknown";
}

absl::Status TypeError(absl::string_view name, absl::string_view what,
                       const Json& got) {
  return FieldError(
      name, absl::StrCat("must be ", what, " (got ", JsonTypeName(got), ")"));
}

const Json* JsonFields::Find(absl::string_view name) const {
  auto it = object_.find(name);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string JsonFields::Name(absl::string_view name) const {
  return absl::StrCat(prefix_, name);
}

absl::StatusOr<std::optional<std::string>> JsonFields::String(
    absl::string_view name) const {
  const Json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) return TypeError(Name(name), "a string", *v);
  return v->get_ref<const std::string&>();
}

absl::StatusOr<std::optional<bool>> JsonFields::Bool(
    absl::string_view name) const {
  const Json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) return TypeError(Name(name), "true or false", *v);
  return v->get<bool>();
}

absl::StatusOr<std::optional<double>> JsonFields::Number(
    absl::string_view name) const {
  const Json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) return TypeError(Name(name), "a number", *v);
  const double d = v->get<double>();
  if (!std::isfinite(d)) return FieldError(Name(name), "must be finite");
  return d;
}

absl::StatusOr<std::optional<int64_t>> JsonFields::Integer(
    absl::string_view name, int64_t min, int64_t max) const {
  const Json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) return TypeError(Name(name), "an integer", *v);
  const bool too_big =
      v->is_number_unsigned() &&
      v->get<uint64_t>() >
          static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const int64_t i =
      too_big ? std::numeric_limits<int64_t>::max() : v->get<int64_t>();
  if (too_big || i < min || i > max) {
    return FieldError(Name(name), absl::StrCat("must be in [", min, ", ", max,
                                               "] (got ", v->dump(), ")"));
  }
  return i;
}

absl::StatusOr<std::optional<uint64_t>> JsonFields::Unsigned(
    absl::string_view name) const {
  const Json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) return TypeError(Name(name), "an integer", *v);
  if (!v->is_number_unsigned()) {
    return FieldError(Name(name),
                      absl::StrCat("must be >= 0 (got ", v->dump(), ")"));
  }
  return v->get<uint64_t>();
}

absl::StatusOr<const Json*> JsonFields::Object(absl::string_view name) const {
  const Json* v = Find(name);
  if (v != nullptr && !v->is_object())
    return TypeError(Name(name), "an object", *v);
  return v;
}

absl::StatusOr<const Json*> JsonFields::Array(absl::string_view name) const {
  const Json* v = Find(name);
  if (v != nullptr && !v->is_array())
    return TypeError(Name(name), "an array", *v);
  return v;
}

}  // namespace lumen::server::http
