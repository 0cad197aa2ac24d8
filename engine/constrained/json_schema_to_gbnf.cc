#include "engine/constrained/json_schema_to_gbnf.h"

#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "engine/constrained/gbnf_parser.h"
#include "engine/constrained/gbnf_text.h"
#include "engine/constrained/json_schema_converter.h"
#include "engine/constrained/json_schema_keywords.h"
#include "engine/constrained/numeric_range_gbnf.h"
#include "engine/constrained/regex_to_gbnf.h"
#include "nlohmann/json.hpp"

namespace lumen::engine::constrained {

namespace {

constexpr int kMaxDepth = 100;

bool MatchesType(const Json& v, const std::string& type) {
  if (type == "null") return v.is_null();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    return v.is_number_integer() ||
           (v.is_number_float() &&
            std::floor(v.get<double>()) == v.get<double>());
  }
  return false;
}

}  // namespace

std::string Dump(const Json& v) {
  return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::StatusOr<std::string> SchemaConverter::Convert(
    const std::vector<std::pair<std::string, std::string>>& entries) {
  for (const auto& [name, pointer] : entries) reserved_.insert(name);
  Reserve("root");
  ref_rules_[""] = "root";
  auto expr = Visit(root_, "#", "root", 0);
  if (!expr.ok()) return expr.status();
  Define("root", *expr);
  for (const auto& [name, pointer] : entries) {
    const Json* sub = nullptr;
    try {
      const Json::json_pointer at(pointer);
      if (root_.contains(at)) sub = &root_.at(at);
    } catch (const nlohmann::json::exception&) {
    }
    if (sub == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("json_schema: no schema at ", pointer));
    }
    auto entry = Visit(*sub, absl::StrCat("#", pointer), name, 0);
    if (!entry.ok()) return entry.status();
    rule_index_[name] = rules_.size();
    rules_.push_back({name, *entry});
  }
  std::string out;
  for (const auto& [name, body] : rules_) {
    absl::StrAppend(&out, name, " ::= ", body, "\n");
  }
  return out;
}

absl::Status SchemaConverter::Error(absl::string_view what,
                                    const std::string& path) const {
  return absl::InvalidArgumentError(
      absl::StrCat("json_schema: ", what, " at ", path));
}

std::string SchemaConverter::Reserve(absl::string_view hint) {
  const std::string base = Sanitize(hint);
  std::string name = base;
  for (int i = 2; reserved_.contains(name) || rule_index_.contains(name); ++i) {
    name = absl::StrCat(base, "-", i);
  }
  rule_index_[name] = rules_.size();
  rules_.push_back({name, ""});
  return name;
}

void SchemaConverter::Define(const std::string& name, std::string body) {
  while (!body.empty() && body.back() == ' ') body.pop_back();
  rules_[rule_index_.at(name)].second = std::move(body);
}

std::string SchemaConverter::NewRule(absl::string_view hint, std::string body) {
  const std::string name = Reserve(hint);
  Define(name, std::move(body));
  return name;
}

std::string SchemaConverter::RuleFor(const std::string& expr,
                                     absl::string_view hint) {
  return IsRuleName(expr) ? expr : NewRule(hint, expr);
}

std::string SchemaConverter::Use(const std::string& name) {
  if (rule_index_.contains(name)) return name;
  for (const Primitive& p : Primitives()) {
    if (name != p.name) continue;
    rule_index_[name] = rules_.size();
    rules_.push_back({name, p.body});
    for (const char* dep : p.needs) Use(dep);
  }
  return name;
}

absl::StatusOr<std::string> SchemaConverter::Visit(const Json& schema,
                                                   const std::string& path,
                                                   const std::string& hint,
                                                   int depth) {
  if (depth > kMaxDepth) {
    return Error(
        absl::StrCat("schema nested deeper than ", kMaxDepth, " levels"), path);
  }
  if (schema.is_boolean()) {
    if (schema.get<bool>()) return Use("value");
    return Error("schema 'false' (nothing can match it)", path);
  }
  if (!schema.is_object()) {
    return Error("a schema must be an object or a boolean", path);
  }
  for (const auto& [key, value] : schema.items()) {
    if (!IsKnownKeyword(key)) {
      return Error(absl::StrCat("unsupported keyword '", key, "'"), path);
    }
  }
  auto only_with = [&](const char* main) -> absl::Status {
    for (const auto& [key, value] : schema.items()) {
      if (key == main || Annotations().contains(key)) continue;
      if (absl::string_view(main) == "enum" && key == "type") continue;
      if (absl::string_view(main) == "const" && key == "type") continue;
      return Error(absl::StrCat("keyword '", key, "' next to '", main,
                                "' is not supported"),
                   path);
    }
    return absl::OkStatus();
  };
  if (schema.contains("$ref")) {
    if (absl::Status s = only_with("$ref"); !s.ok()) return s;
    return VisitRef(schema["$ref"], path, depth);
  }
  if (schema.contains("enum") || schema.contains("const")) {
    const char* key = schema.contains("const") ? "const" : "enum";
    if (schema.contains("const") && schema.contains("enum")) {
      return Error("keyword 'enum' next to 'const' is not supported", path);
    }
    if (absl::Status s = only_with(key); !s.ok()) return s;
    return Enum(schema, key, path);
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!schema.contains(key)) continue;
    if (absl::Status s = only_with(key); !s.ok()) return s;
    const Json& branches = schema[key];
    if (!branches.is_array() || branches.empty()) {
      return Error(absl::StrCat("'", key, "' must be a non-empty array"), path);
    }
    std::vector<std::string> alternatives;
    for (size_t i = 0; i < branches.size(); ++i) {
      auto e = Visit(branches[i], absl::StrCat(path, "/", key, "/", i),
                     absl::StrCat(hint, "-", i), depth + 1);
      if (!e.ok()) return e.status();
      alternatives.push_back(*e);
    }
    return absl::StrCat("( ", absl::StrJoin(alternatives, " | "), " )");
  }

  auto types = Types(schema, path);
  if (!types.ok()) return types.status();
  if (types->empty()) return Use("value");
  // Each type-specific keyword must apply to one of the types.
  for (const auto& [key, value] : schema.items()) {
    auto group = TypeKeywords().find(key);
    if (group == TypeKeywords().end()) continue;
    bool applies = false;
    for (const std::string& t : *types) {
      applies = applies || GroupAppliesTo(group->second, t);
    }
    if (!applies) {
      return Error(absl::StrCat("keyword '", key, "' does not apply to type '",
                                absl::StrJoin(*types, "', '"), "'"),
                   path);
    }
  }
  std::vector<std::string> alternatives;
  for (const std::string& t : *types) {
    absl::StatusOr<std::string> e;
    if (t == "object") {
      e = Object(schema, path, hint, depth);
    } else if (t == "array") {
      e = Array(schema, path, hint, depth);
    } else if (t == "string") {
      e = String(schema, path);
    } else if (t == "integer") {
      e = Integer(schema, path);
    } else if (t == "number") {
      e = Number(schema, path);
    } else if (t == "boolean") {
      e = Use("boolean");
    } else {
      e = Use("null");
    }
    if (!e.ok()) return e.status();
    alternatives.push_back(*e);
  }
  if (alternatives.size() == 1) return alternatives[0];
  return absl::StrCat("( ", absl::StrJoin(alternatives, " | "), " )");
}

absl::StatusOr<std::vector<std::string>> SchemaConverter::Types(
    const Json& schema, const std::string& path) {
  static const std::set<std::string> kTypes = {
      "null", "boolean", "object", "array", "number", "integer", "string"};
  std::vector<std::string> types;
  if (schema.contains("type")) {
    const Json& t = schema["type"];
    std::vector<Json> list;
    if (t.is_array()) {
      list.assign(t.begin(), t.end());
      if (list.empty()) return Error("'type' is an empty list", path);
    } else {
      list.push_back(t);
    }
    for (const Json& v : list) {
      if (!v.is_string() || !kTypes.contains(v.get<std::string>())) {
        return Error(absl::StrCat("unknown type ", Dump(v)),
                     absl::StrCat(path, "/type"));
      }
      types.push_back(v.get<std::string>());
    }
    return types;
  }
  std::set<KeywordGroup> groups;
  for (const auto& [key, value] : schema.items()) {
    auto g = TypeKeywords().find(key);
    if (g != TypeKeywords().end()) groups.insert(g->second);
  }
  if (groups.contains(KeywordGroup::kObject)) types.push_back("object");
  if (groups.contains(KeywordGroup::kArray)) types.push_back("array");
  if (groups.contains(KeywordGroup::kString)) types.push_back("string");
  if (groups.contains(KeywordGroup::kNumeric)) types.push_back("number");
  return types;
}

absl::StatusOr<std::string> SchemaConverter::VisitRef(const Json& ref,
                                                      const std::string& path,
                                                      int depth) {
  if (!ref.is_string()) return Error("'$ref' must be a string", path);
  std::string text = ref.get<std::string>();
  if (text.empty() || text[0] != '#') {
    return Error(absl::StrCat("$ref '", text,
                              "' is not local (only '#...' references are "
                              "supported)"),
                 path);
  }
  // URI fragment: percent-decode, then it is a JSON pointer.
  std::string pointer;
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() &&
        std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      pointer +=
          static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      pointer += text[i];
    }
  }
  auto known = ref_rules_.find(pointer);
  if (known != ref_rules_.end()) return known->second;
  const Json* target = nullptr;
  if (pointer.empty() || pointer[0] == '/') {
    try {
      const Json::json_pointer p(pointer);
      if (root_.contains(p)) target = &root_.at(p);
    } catch (const nlohmann::json::exception&) {
      target = nullptr;
    }
  }
  if (target == nullptr) {
    return Error(absl::StrCat("$ref '", text, "' does not resolve"), path);
  }
  const size_t slash = pointer.rfind('/');
  const std::string name =
      Reserve(absl::StrCat("def-", pointer.substr(slash + 1)));
  ref_rules_[pointer] = name;
  auto expr = Visit(*target, absl::StrCat("#", pointer), name, depth + 1);
  if (!expr.ok()) return expr.status();
  Define(name, *expr);
  return name;
}

absl::StatusOr<std::string> SchemaConverter::Enum(const Json& schema,
                                                  const char* key,
                                                  const std::string& path) {
  std::vector<Json> values;
  if (absl::string_view(key) == "const") {
    values.push_back(schema["const"]);
  } else {
    const Json& e = schema["enum"];
    if (!e.is_array() || e.empty()) {
      return Error("'enum' must be a non-empty array", path);
    }
    values.assign(e.begin(), e.end());
  }
  std::vector<std::string> types;
  if (schema.contains("type")) {
    auto t = Types(schema, path);
    if (!t.ok()) return t.status();
    types = *t;
  }
  std::vector<std::string> alternatives;
  for (const Json& v : values) {
    bool typed = types.empty();
    for (const std::string& t : types) typed = typed || MatchesType(v, t);
    if (typed) alternatives.push_back(GbnfLiteral(Dump(v)));
  }
  if (alternatives.empty()) {
    return Error(absl::StrCat("no value of '", key, "' has the type given"),
                 path);
  }
  if (alternatives.size() == 1) return alternatives[0];
  return absl::StrCat("( ", absl::StrJoin(alternatives, " | "), " )");
}

absl::StatusOr<int> SchemaConverter::Count(const Json& schema, const char* key,
                                           const std::string& path,
                                           int fallback) {
  if (!schema.contains(key)) return fallback;
  const Json& v = schema[key];
  const bool whole =
      v.is_number_unsigned() || v.is_number_integer() ||
      (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  if (!whole || v.get<double>() < 0) {
    return Error(absl::StrCat("'", key, "' must be a non-negative integer"),
                 path);
  }
  if (v.get<double>() > kMaxRepetition) {
    return Error(
        absl::StrCat("'", key, "' above ", kMaxRepetition, " is not supported"),
        path);
  }
  return static_cast<int>(v.get<double>());
}

absl::StatusOr<std::string> SchemaConverter::String(const Json& schema,
                                                    const std::string& path) {
  const bool has_length =
      schema.contains("minLength") || schema.contains("maxLength");
  const char* regex_key = schema.contains("pattern")  ? "pattern"
                          : schema.contains("format") ? "format"
                                                      : nullptr;
  if (regex_key != nullptr) {
    if (schema.contains("pattern") && schema.contains("format")) {
      return Error("keyword 'format' next to 'pattern' is not supported", path);
    }
    if (has_length) {
      return Error(absl::StrCat("'minLength'/'maxLength' next to '", regex_key,
                                "' is not supported"),
                   path);
    }
    const Json& v = schema[regex_key];
    if (!v.is_string()) {
      return Error(absl::StrCat("'", regex_key, "' must be a string"), path);
    }
    std::string regex = v.get<std::string>();
    if (absl::string_view(regex_key) == "format") {
      auto f = Formats().find(regex);
      if (f == Formats().end()) {
        return Error(absl::StrCat("format '", regex,
                                  "' is not supported (supported: date, "
                                  "date-time, time, uuid)"),
                     path);
      }
      regex = f->second;
    }
    auto expr = RegexToGbnf(regex, RegexTarget::kJsonStringContent);
    if (!expr.ok()) {
      return Error(absl::StrCat("'pattern' ", ToJsonString(regex), ": ",
                                expr.status().message()),
                   path);
    }
    return absl::StrCat(R"("\"" )", *expr, R"( "\"")");
  }
  if (!has_length) return Use("string");
  auto min = Count(schema, "minLength", path, 0);
  if (!min.ok()) return min.status();
  auto max = Count(schema, "maxLength", path, -1);
  if (!max.ok()) return max.status();
  if (*max >= 0 && *max < *min) {
    return Error("'maxLength' is below 'minLength'", path);
  }
  Use("json-char");
  if (*max == 0) return std::string(R"("\"\"")");
  return absl::StrCat(R"("\"" json-char)", Quantifier(*min, *max), R"( "\"")");
}

std::string SchemaConverter::ToJsonString(const std::string& s) {
  return Dump(Json(s));
}

absl::Status SchemaConverter::Bounds(const Json& schema,
                                     const std::string& path, bool integer,
                                     std::optional<int64_t>* lo,
                                     std::optional<int64_t>* hi) {
  for (const char* key :
       {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
    if (!schema.contains(key)) continue;
    const Json& v = schema[key];
    if (!v.is_number()) {
      return Error(absl::StrCat("'", key, "' must be a number"), path);
    }
    const double d = v.get<double>();
    if (std::fabs(d) > static_cast<double>(kMaxIntegerBound)) {
      return Error(absl::StrCat("'", key, "' beyond +-1e18 is not supported"),
                   path);
    }
    const bool exclusive = key[0] == 'e';
    const bool is_min =
        absl::string_view(key).find("inimum") != absl::string_view::npos;
    if (!integer && (exclusive || std::floor(d) != d)) {
      return Error(absl::StrCat("'", key,
                                "' on a number is supported only as an "
                                "inclusive whole number"),
                   path);
    }
    int64_t bound;
    if (is_min) {
      bound = exclusive ? static_cast<int64_t>(std::floor(d)) + 1
                        : static_cast<int64_t>(std::ceil(d));
      if (!*lo || bound > **lo) *lo = bound;
    } else {
      bound = exclusive ? static_cast<int64_t>(std::ceil(d)) - 1
                        : static_cast<int64_t>(std::floor(d));
      if (!*hi || bound < **hi) *hi = bound;
    }
  }
  if (*lo && *hi && **lo > **hi) {
    return Error(absl::StrCat("no ", integer ? "integer" : "number",
                              " lies between the minimum and the maximum"),
                 path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SchemaConverter::Integer(const Json& schema,
                                                     const std::string& path) {
  std::optional<int64_t> lo, hi;
  if (absl::Status s = Bounds(schema, path, true, &lo, &hi); !s.ok()) {
    return s;
  }
  if (!lo && !hi) return Use("integer");
  return IntegerRangeGbnf(lo, hi);
}

absl::StatusOr<std::string> SchemaConverter::Number(const Json& schema,
                                                    const std::string& path) {
  std::optional<int64_t> lo, hi;
  if (absl::Status s = Bounds(schema, path, false, &lo, &hi); !s.ok()) {
    return s;
  }
  if (!lo && !hi) return Use("number");
  return NumberRangeGbnf(lo, hi);
}

absl::StatusOr<std::string> JsonSchemaToGbnf(absl::string_view schema_json) {
  Json schema;
  try {
    schema = Json::parse(schema_json);
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    if (const size_t close = what.find("] "); close != std::string::npos) {
      what = what.substr(close + 2);  // drop "[json.exception.parse_error.N]"
    }
    return absl::InvalidArgumentError(
        absl::StrCat("json_schema is not valid JSON: ", what));
  }
  return SchemaConverter(schema).Convert();
}

absl::StatusOr<std::string> JsonSchemaToGbnf(
    absl::string_view schema_json,
    const std::vector<std::pair<std::string, std::string>>& entries,
    bool strings_without_lt) {
  Json schema = Json::parse(schema_json, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) {
    return absl::InvalidArgumentError("json_schema is not valid JSON");
  }
  absl::StatusOr<std::string> gbnf = SchemaConverter(schema).Convert(entries);
  if (!gbnf.ok() || !strings_without_lt) return gbnf;
  // The string characters of the primitives (json-char, json-plain-char)
  // leave '<' out; a string may still hold it escaped as \u003c.
  return absl::StrReplaceAll(*gbnf,
                             {{R"([^"\\\x00-\x1F])", R"([^"\\<\x00-\x1F])"}});
}

std::string JsonObjectGbnf() {
  auto gbnf = JsonSchemaToGbnf(R"({"type": "object"})");
  return *gbnf;  // a fixed, valid schema
}

}  // namespace lumen::engine::constrained
