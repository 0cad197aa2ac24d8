// SchemaConverter, part two: arrays and objects (properties in declared
// order, optional ones as an in-order subset, extra keys that never repeat a
// declared one).

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/constrained/gbnf_text.h"
#include "engine/constrained/json_schema_converter.h"
#include "engine/constrained/json_schema_keywords.h"

namespace lumen::engine::constrained {

absl::StatusOr<std::string> SchemaConverter::Array(const Json& schema,
                                                   const std::string& path,
                                                   const std::string& hint,
                                                   int depth) {
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
                        tail(*min - 1, *max < 0 ? -1 : *max - 1), R"( ws "]")");
  }
  return absl::StrCat(R"("[" ws ( )", item, tail(0, *max < 0 ? -1 : *max - 1),
                      R"( ws )? "]")");
}

absl::StatusOr<std::string> SchemaConverter::Object(const Json& schema,
                                                    const std::string& path,
                                                    const std::string& hint,
                                                    int depth) {
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
    return Error("'additionalProperties' must be a boolean or a schema", path);
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
    return absl::StrCat(GbnfLiteral(Dump(Json(key))), R"( ws ":" ws )", value);
  };
  std::vector<std::string> required_members, optional_members;
  std::vector<std::string> declared;
  for (const auto& [key, sub] : properties.items()) {
    declared.push_back(key);
    const std::string sub_hint = absl::StrCat(hint, "-", key);
    auto e = Visit(sub, absl::StrCat(path, "/properties/", PointerSegment(key)),
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
        R"("{" ws )", absl::StrJoin(required_members, absl::StrCat(" ", comma)),
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

std::string SchemaConverter::KeyOtherThan(const std::vector<std::string>& names,
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
    alternatives.push_back(
        absl::StrCat(GbnfClass(taken, /*negated=*/true), " json-plain-char*"));
    // The empty alternative goes first: after a trailing '|' GBNF
    // continues on the next line.
    if (!nodes[i].terminal) alternatives.insert(alternatives.begin(), "");
    Define(names_of[i], absl::StrJoin(alternatives, " | "));
  }
  return absl::StrCat(R"("\"" )", names_of[0], R"( "\"")");
}

}  // namespace lumen::engine::constrained
