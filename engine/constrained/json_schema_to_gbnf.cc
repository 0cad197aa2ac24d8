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
#include "engine/constrained/gbnf_parser.h"
#include "engine/constrained/gbnf_text.h"
#include "engine/constrained/integer_range_gbnf.h"
#include "engine/constrained/regex_to_gbnf.h"
#include "nlohmann/json.hpp"

namespace lumen::engine::constrained {

namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxDepth = 100;

// Fixed rules, added on first use with what they need.
struct Primitive {
  const char* name;
  const char* body;
  std::vector<const char*> needs;
};

const std::vector<Primitive>& Primitives() {
  static const auto* kPrimitives = new std::vector<Primitive>{
      {"ws", R"(( " " | "\n" [ \t]{0,20} )?)", {}},
      {"json-hex", R"([0-9a-fA-F])", {}},
      // One character of a string; \u escapes of surrogates are left out so
      // that every match is exactly one code point (minLength/maxLength
      // count code points).
      {"json-char",
       R"([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" ( [0-9a-cA-CeEfF] json-hex{3} | [dD] [0-7] json-hex{2} ) ))",
       {"json-hex"}},
      {"json-plain-char", R"([^"\\\x00-\x1F])", {}},
      {"string", R"("\"" json-char* "\"")", {"json-char"}},
      {"integer", R"("-"? ( "0" | [1-9] [0-9]{0,15} ))", {}},
      {"number",
       R"("-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?)",
       {}},
      {"boolean", R"("true" | "false")", {}},
      {"null", R"("null")", {}},
      {"value",
       R"(object | array | string | number | boolean | null)",
       {"object", "array", "string", "number", "boolean", "null"}},
      {"object",
       R"("{" ws ( member ( ws "," ws member )* ws )? "}")",
       {"ws", "member"}},
      {"member", R"(string ws ":" ws value)", {"string", "ws", "value"}},
      {"array",
       R"("[" ws ( value ( ws "," ws value )* ws )? "]")",
       {"ws", "value"}},
  };
  return *kPrimitives;
}

// Regular expressions of the supported string formats.
const std::map<std::string, std::string>& Formats() {
  static const auto* kFormats = [] {
    const std::string date =
        "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])";
    const std::string time =
        "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?"
        "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
    return new std::map<std::string, std::string>{
        {"date", date},
        {"time", time},
        {"date-time", date + "T" + time},
        {"uuid",
         "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
         "[0-9a-fA-F]{12}"},
    };
  }();
  return *kFormats;
}

const std::set<std::string>& Annotations() {
  static const auto* k = new std::set<std::string>{
      "$schema",     "$id",       "$comment", "title",
      "description", "default",   "examples", "deprecated",
      "readOnly",    "writeOnly", "$defs",    "definitions"};
  return *k;
}

enum class KeywordGroup { kObject, kArray, kString, kNumeric };

const std::map<std::string, KeywordGroup>& TypeKeywords() {
  static const auto* k = new std::map<std::string, KeywordGroup>{
      {"properties", KeywordGroup::kObject},
      {"required", KeywordGroup::kObject},
      {"additionalProperties", KeywordGroup::kObject},
      {"items", KeywordGroup::kArray},
      {"minItems", KeywordGroup::kArray},
      {"maxItems", KeywordGroup::kArray},
      {"minLength", KeywordGroup::kString},
      {"maxLength", KeywordGroup::kString},
      {"pattern", KeywordGroup::kString},
      {"format", KeywordGroup::kString},
      {"minimum", KeywordGroup::kNumeric},
      {"maximum", KeywordGroup::kNumeric},
      {"exclusiveMinimum", KeywordGroup::kNumeric},
      {"exclusiveMaximum", KeywordGroup::kNumeric},
  };
  return *k;
}

bool IsKnownKeyword(const std::string& k) {
  static const std::set<std::string> kStructural = {"type",  "enum",  "const",
                                                    "anyOf", "oneOf", "$ref"};
  return Annotations().contains(k) || kStructural.contains(k) ||
         TypeKeywords().contains(k);
}

bool GroupAppliesTo(KeywordGroup g, const std::string& type) {
  switch (g) {
    case KeywordGroup::kObject:
      return type == "object";
    case KeywordGroup::kArray:
      return type == "array";
    case KeywordGroup::kString:
      return type == "string";
    case KeywordGroup::kNumeric:
      return type == "integer" || type == "number";
  }
  return false;
}

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

std::string Dump(const Json& v) {
  return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// JSON pointer segment escaping (~ and /).
std::string PointerSegment(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Sanitize(absl::string_view hint) {
  std::string out;
  for (char c : hint) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9');
    if (ok) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "x" : out;
}

bool IsRuleName(const std::string& expr) {
  for (char c : expr) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return !expr.empty();
}

// "*", "{2,5}", ... for lo..hi repetitions (hi < 0: unbounded).
std::string Quantifier(int lo, int hi) {
  if (hi < 0) {
    if (lo == 0) return "*";
    if (lo == 1) return "+";
    return absl::StrCat("{", lo, ",}");
  }
  if (lo == 0 && hi == 1) return "?";
  if (lo == hi) return absl::StrCat("{", lo, "}");
  return absl::StrCat("{", lo, ",", hi, "}");
}

class SchemaConverter {
 public:
  explicit SchemaConverter(const Json& root) : root_(root) {
    for (const Primitive& p : Primitives()) reserved_.insert(p.name);
  }

  absl::StatusOr<std::string> Convert() {
    Reserve("root");
    ref_rules_[""] = "root";
    auto expr = Visit(root_, "#", "root", 0);
    if (!expr.ok()) return expr.status();
    Define("root", *expr);
    std::string out;
    for (const auto& [name, body] : rules_) {
      absl::StrAppend(&out, name, " ::= ", body, "\n");
    }
    return out;
  }

 private:
  absl::Status Error(absl::string_view what, const std::string& path) const {
    return absl::InvalidArgumentError(
        absl::StrCat("json_schema: ", what, " at ", path));
  }

  // Reserves a rule name derived from `hint`; its body comes later.
  std::string Reserve(absl::string_view hint) {
    const std::string base = Sanitize(hint);
    std::string name = base;
    for (int i = 2; reserved_.contains(name) || rule_index_.contains(name);
         ++i) {
      name = absl::StrCat(base, "-", i);
    }
    rule_index_[name] = rules_.size();
    rules_.push_back({name, ""});
    return name;
  }
  void Define(const std::string& name, std::string body) {
    while (!body.empty() && body.back() == ' ') body.pop_back();
    rules_[rule_index_.at(name)].second = std::move(body);
  }
  std::string NewRule(absl::string_view hint, std::string body) {
    const std::string name = Reserve(hint);
    Define(name, std::move(body));
    return name;
  }
  std::string RuleFor(const std::string& expr, absl::string_view hint) {
    return IsRuleName(expr) ? expr : NewRule(hint, expr);
  }
  // A fixed rule (and the rules it uses).
  std::string Use(const std::string& name) {
    if (rule_index_.contains(name)) return name;
    for (const Primitive& p : Primitives()) {
      if (name != p.name) continue;
      rule_index_[name] = rules_.size();
      rules_.push_back({name, p.body});
      for (const char* dep : p.needs) Use(dep);
    }
    return name;
  }

  absl::StatusOr<std::string> Visit(const Json& schema, const std::string& path,
                                    const std::string& hint, int depth) {
    if (depth > kMaxDepth) {
      return Error(
          absl::StrCat("schema nested deeper than ", kMaxDepth, " levels"),
          path);
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
        return Error(absl::StrCat("'", key, "' must be a non-empty array"),
                     path);
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
        return Error(
            absl::StrCat("keyword '", key, "' does not apply to type '",
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

  // The schema's types, from "type" or inferred from its keywords; empty
  // means any value.
  absl::StatusOr<std::vector<std::string>> Types(const Json& schema,
                                                 const std::string& path) {
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

  absl::StatusOr<std::string> VisitRef(const Json& ref, const std::string& path,
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

  absl::StatusOr<std::string> Enum(const Json& schema, const char* key,
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

  absl::StatusOr<int> Count(const Json& schema, const char* key,
                            const std::string& path, int fallback) {
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
      return Error(absl::StrCat("'", key, "' above ", kMaxRepetition,
                                " is not supported"),
                   path);
    }
    return static_cast<int>(v.get<double>());
  }

  absl::StatusOr<std::string> String(const Json& schema,
                                     const std::string& path) {
    const bool has_length =
        schema.contains("minLength") || schema.contains("maxLength");
    const char* regex_key = schema.contains("pattern")  ? "pattern"
                            : schema.contains("format") ? "format"
                                                        : nullptr;
    if (regex_key != nullptr) {
      if (schema.contains("pattern") && schema.contains("format")) {
        return Error("keyword 'format' next to 'pattern' is not supported",
                     path);
      }
      if (has_length) {
        return Error(absl::StrCat("'minLength'/'maxLength' next to '",
                                  regex_key, "' is not supported"),
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
    return absl::StrCat(R"("\"" json-char)", Quantifier(*min, *max),
                        R"( "\"")");
  }

  static std::string ToJsonString(const std::string& s) {
    return Dump(Json(s));
  }

  // Inclusive whole-number bounds from minimum/maximum (and, for integers,
  // the exclusive forms).
  absl::Status Bounds(const Json& schema, const std::string& path, bool integer,
                      std::optional<int64_t>* lo, std::optional<int64_t>* hi) {
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

  absl::StatusOr<std::string> Integer(const Json& schema,
                                      const std::string& path) {
    std::optional<int64_t> lo, hi;
    if (absl::Status s = Bounds(schema, path, true, &lo, &hi); !s.ok()) {
      return s;
    }
    if (!lo && !hi) return Use("integer");
    return IntegerRangeGbnf(lo, hi);
  }

  // Numbers in [lo, hi] without exponent: the integer part decides, and the
  // upper bound itself only takes a zero fraction.
  absl::StatusOr<std::string> Number(const Json& schema,
                                     const std::string& path) {
    std::optional<int64_t> lo, hi;
    if (absl::Status s = Bounds(schema, path, false, &lo, &hi); !s.ok()) {
      return s;
    }
    if (!lo && !hi) return Use("number");
    const std::string any_fraction = R"(( "." [0-9]{1,16} )?)";
    const std::string zero_fraction = R"(( "." "0"{1,16} )?)";
    // Magnitudes m with m_lo <= m <= m_hi (m_hi empty: unbounded).
    auto magnitudes = [&](int64_t m_lo, std::optional<int64_t> m_hi) {
      std::vector<std::string> alternatives;
      if (!m_hi) {
        alternatives.push_back(absl::StrCat(
            IntegerRangeGbnf(m_lo, std::nullopt), " ", any_fraction));
      } else {
        if (*m_hi - 1 >= m_lo) {
          alternatives.push_back(absl::StrCat(IntegerRangeGbnf(m_lo, *m_hi - 1),
                                              " ", any_fraction));
        }
        alternatives.push_back(
            absl::StrCat(IntegerRangeGbnf(*m_hi, *m_hi), " ", zero_fraction));
      }
      return alternatives;
    };
    std::vector<std::string> alternatives;
    if (!hi || *hi >= 0) {
      auto a = magnitudes(lo ? std::max<int64_t>(*lo, 0) : 0, hi);
      alternatives.insert(alternatives.end(), a.begin(), a.end());
    }
    if (!lo || *lo < 0) {
      std::optional<int64_t> m_hi;
      if (lo) m_hi = -*lo;
      auto a = magnitudes(hi && *hi < 0 ? -*hi : 0, m_hi);
      alternatives.push_back(
          absl::StrCat(R"("-" ( )", absl::StrJoin(a, " | "), " )"));
    }
    return absl::StrCat("( ", absl::StrJoin(alternatives, " | "), " )");
  }

  absl::StatusOr<std::string> Array(const Json& schema, const std::string& path,
                                    const std::string& hint, int depth) {
    Use("ws");
    auto min = Count(schema, "minItems", path, 0);
    if (!min.ok()) return min.status();
    auto max = Count(schema, "maxItems", path, -1);
    if (!max.ok()) return max.status();
    if (*max >= 0 && *max < *min) {
      return Error("'maxItems' is below 'minItems'", path);
    }
    std::string item = "value";
    if (schema.contains("items")) {
      const Json& items = schema["items"];
      if (items.is_array()) {
        return Error("'items' as an array (tuple form) is not supported", path);
      }
      if (items.is_boolean() && !items.get<bool>()) {
        if (*min > 0) return Error("'minItems' > 0 with 'items': false", path);
        *max = 0;
      } else {
        auto e = Visit(items, path + "/items", hint + "-item", depth + 1);
        if (!e.ok()) return e.status();
        item = RuleFor(*e, hint + "-item");
      }
    }
    if (item == "value") Use("value");
    if (*max == 0) return std::string(R"("[" ws "]")");
    const std::string more = absl::StrCat(R"(( ws "," ws )", item, " )");
    auto tail = [&](int lo, int hi) {
      if (hi == 0) return std::string();
      return " " + more + Quantifier(lo, hi);
    };
    if (*min >= 1) {
      return absl::StrCat(R"("[" ws )", item,
                          tail(*min - 1, *max < 0 ? -1 : *max - 1),
                          R"( ws "]")");
    }
    return absl::StrCat(R"("[" ws ( )", item, tail(0, *max < 0 ? -1 : *max - 1),
                        R"( ws )? "]")");
  }

  absl::StatusOr<std::string> Object(const Json& schema,
                                     const std::string& path,
                                     const std::string& hint, int depth) {
    Use("ws");
    const Json empty = Json::object();
    const Json& properties =
        schema.contains("properties") ? schema["properties"] : empty;
    if (!properties.is_object()) {
      return Error("'properties' must be an object", path);
    }
    std::vector<std::string> required;
    if (schema.contains("required")) {
      const Json& r = schema["required"];
      if (!r.is_array()) {
        return Error("'required' must be an array of strings", path);
      }
      for (const Json& name : r) {
        if (!name.is_string()) {
          return Error("'required' must be an array of strings", path);
        }
        if (std::find(required.begin(), required.end(),
                      name.get<std::string>()) == required.end()) {
          required.push_back(name.get<std::string>());
        }
      }
    }
    // additionalProperties: absent, true/false, or a schema.
    const bool has_additional = schema.contains("additionalProperties");
    const Json additional =
        has_additional ? schema["additionalProperties"] : Json(true);
    if (!additional.is_boolean() && !additional.is_object()) {
      return Error("'additionalProperties' must be a boolean or a schema",
                   path);
    }
    const bool additional_false =
        additional.is_boolean() && !additional.get<bool>();
    std::string additional_rule;  // value rule of undeclared properties
    auto additional_value = [&]() -> absl::StatusOr<std::string> {
      if (!additional_rule.empty()) return additional_rule;
      if (additional.is_object()) {
        auto e = Visit(additional, path + "/additionalProperties",
                       hint + "-additional", depth + 1);
        if (!e.ok()) return e.status();
        additional_rule = RuleFor(*e, hint + "-additional");
      } else {
        additional_rule = Use("value");
      }
      return additional_rule;
    };

    auto member = [&](const std::string& key, const std::string& value) {
      return absl::StrCat(GbnfLiteral(Dump(Json(key))), R"( ws ":" ws )",
                          value);
    };
    std::vector<std::string> required_members, optional_members;
    std::vector<std::string> declared;
    for (const auto& [key, sub] : properties.items()) {
      declared.push_back(key);
      const std::string sub_hint = absl::StrCat(hint, "-", key);
      auto e =
          Visit(sub, absl::StrCat(path, "/properties/", PointerSegment(key)),
                sub_hint, depth + 1);
      if (!e.ok()) return e.status();
      const std::string m = member(key, RuleFor(*e, sub_hint));
      const bool is_required =
          std::find(required.begin(), required.end(), key) != required.end();
      (is_required ? required_members : optional_members).push_back(m);
    }
    for (const std::string& key : required) {
      if (properties.contains(key)) continue;
      if (additional_false) {
        return Error(absl::StrCat("required property '", key,
                                  "' is not in 'properties' and "
                                  "additionalProperties is false"),
                     path);
      }
      auto value = additional_value();
      if (!value.ok()) return value.status();
      declared.push_back(key);
      required_members.push_back(member(key, *value));
    }
    // With properties declared, extra ones only when asked for explicitly.
    std::string extra_member;
    if (!additional_false && (has_additional || declared.empty())) {
      auto value = additional_value();
      if (!value.ok()) return value.status();
      const std::string key =
          declared.empty() ? Use("string") : KeyOtherThan(declared, hint);
      extra_member = absl::StrCat(key, R"( ws ":" ws )", *value);
    }
    // rest[k]: any in-order subset of the optional members from k on, then
    // any number of extra members; each preceded by a comma.
    const std::string comma = R"(ws "," ws )";
    std::string rest;
    if (!extra_member.empty()) {
      rest = NewRule(hint + "-extra",
                     absl::StrCat("( ", comma, extra_member, " )*"));
    }
    std::vector<std::string> rests(optional_members.size() + 1);
    rests.back() = rest;
    for (size_t k = optional_members.size(); k-- > 0;) {
      rests[k] = NewRule(
          absl::StrCat(hint, "-rest-", k),
          absl::StrCat("( ", comma, optional_members[k], " )? ", rests[k + 1]));
    }
    if (!required_members.empty()) {
      return absl::StrCat(
          R"("{" ws )",
          absl::StrJoin(required_members, absl::StrCat(" ", comma)),
          rests[0].empty() ? "" : " ", rests[0], R"( ws "}")");
    }
    std::vector<std::string> first;
    for (size_t k = 0; k < optional_members.size(); ++k) {
      first.push_back(absl::StrCat(optional_members[k], " ", rests[k + 1]));
    }
    if (!extra_member.empty())
      first.push_back(absl::StrCat(extra_member, " ", rest));
    if (first.empty()) return std::string(R"("{" ws "}")");
    return absl::StrCat(R"("{" ws ( ( )", absl::StrJoin(first, " | "),
                        R"( ) ws )? "}")");
  }

  // A JSON string key (without escapes) that is none of `names`: a trie of
  // the names where every node also offers any other character.
  std::string KeyOtherThan(const std::vector<std::string>& names,
                           const std::string& hint) {
    Use("json-plain-char");
    struct Node {
      std::map<uint32_t, int> children;
      bool terminal = false;
    };
    std::vector<Node> nodes(1);
    for (const std::string& name : names) {
      std::vector<uint32_t> cps;
      size_t pos = 0;
      bool plain = true;
      while (pos < name.size()) {
        uint32_t cp = 0;
        if (!DecodeUtf8Codepoint(name, &pos, &cp) || cp < 0x20 || cp == '"' ||
            cp == '\\') {
          plain = false;  // such a key can never equal an unescaped one
          break;
        }
        cps.push_back(cp);
      }
      if (!plain) continue;
      int n = 0;
      for (uint32_t cp : cps) {
        auto it = nodes[n].children.find(cp);
        if (it == nodes[n].children.end()) {
          nodes.emplace_back();
          it = nodes[n]
                   .children.emplace(cp, static_cast<int>(nodes.size()) - 1)
                   .first;
        }
        n = it->second;
      }
      nodes[n].terminal = true;
    }
    std::vector<std::string> names_of(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      names_of[i] = Reserve(absl::StrCat(hint, "-key-", i));
    }
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::vector<std::string> alternatives;
      CodepointRanges taken = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
      for (const auto& [cp, child] : nodes[i].children) {
        taken.push_back({cp, cp});
        alternatives.push_back(
            absl::StrCat(GbnfLiteral(cp), " ", names_of[child]));
      }
      Normalize(&taken);
      alternatives.push_back(absl::StrCat(GbnfClass(taken, /*negated=*/true),
                                          " json-plain-char*"));
      // The empty alternative goes first: after a trailing '|' GBNF
      // continues on the next line.
      if (!nodes[i].terminal) alternatives.insert(alternatives.begin(), "");
      Define(names_of[i], absl::StrJoin(alternatives, " | "));
    }
    return absl::StrCat(R"("\"" )", names_of[0], R"( "\"")");
  }

  const Json& root_;
  std::vector<std::pair<std::string, std::string>> rules_;
  absl::flat_hash_map<std::string, size_t> rule_index_;
  absl::flat_hash_set<std::string> reserved_;
  absl::flat_hash_map<std::string, std::string> ref_rules_;  // pointer -> rule
};

}  // namespace

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

std::string JsonObjectGbnf() {
  auto gbnf = JsonSchemaToGbnf(R"({"type": "object"})");
  return *gbnf;  // a fixed, valid schema
}

}  // namespace lumen::engine::constrained
