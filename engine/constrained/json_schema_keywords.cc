#include "engine/constrained/json_schema_keywords.h"

#include "absl/strings/str_cat.h"

namespace lumen::engine::constrained {

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

}  // namespace lumen::engine::constrained
