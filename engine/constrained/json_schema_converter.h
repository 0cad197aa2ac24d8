#pragma once
// SchemaConverter: the JSON Schema -> GBNF translator behind
// JsonSchemaToGbnf (json_schema_to_gbnf.h), one instance per schema. Its
// scalar and reference handling lives in json_schema_to_gbnf.cc, objects
// and arrays in json_schema_containers.cc. Not thread-safe; internal to
// this folder.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/constrained/json_schema_keywords.h"
#include "nlohmann/json.hpp"

namespace lumen::engine::constrained {

using Json = nlohmann::ordered_json;

// Compact JSON text of a value (invalid UTF-8 replaced).
std::string Dump(const Json& v);

class SchemaConverter {
 public:
  explicit SchemaConverter(const Json& root) : root_(root) {
    for (const Primitive& p : Primitives()) reserved_.insert(p.name);
  }

  // GBNF text of the whole schema, start rule root, plus a rule named
  // entry.first for each sub-schema at JSON pointer entry.second.
  absl::StatusOr<std::string> Convert(
      const std::vector<std::pair<std::string, std::string>>& entries = {});

 private:
  absl::Status Error(absl::string_view what, const std::string& path) const;
  // Reserves a rule name derived from `hint`; its body comes later.
  std::string Reserve(absl::string_view hint);
  void Define(const std::string& name, std::string body);
  std::string NewRule(absl::string_view hint, std::string body);
  std::string RuleFor(const std::string& expr, absl::string_view hint);
  // A fixed rule (and the rules it uses).
  std::string Use(const std::string& name);
  absl::StatusOr<std::string> Visit(const Json& schema, const std::string& path,
                                    const std::string& hint, int depth);
  // The schema's types, from "type" or inferred from its keywords; empty
  // means any value.
  absl::StatusOr<std::vector<std::string>> Types(const Json& schema,
                                                 const std::string& path);
  absl::StatusOr<std::string> VisitRef(const Json& ref, const std::string& path,
                                       int depth);
  absl::StatusOr<std::string> Enum(const Json& schema, const char* key,
                                   const std::string& path);
  absl::StatusOr<int> Count(const Json& schema, const char* key,
                            const std::string& path, int fallback);
  absl::StatusOr<std::string> String(const Json& schema,
                                     const std::string& path);
  static std::string ToJsonString(const std::string& s);
  // Inclusive whole-number bounds from minimum/maximum (and, for integers,
  // the exclusive forms).
  absl::Status Bounds(const Json& schema, const std::string& path, bool integer,
                      std::optional<int64_t>* lo, std::optional<int64_t>* hi);
  absl::StatusOr<std::string> Integer(const Json& schema,
                                      const std::string& path);
  absl::StatusOr<std::string> Number(const Json& schema,
                                     const std::string& path);
  absl::StatusOr<std::string> Array(const Json& schema, const std::string& path,
                                    const std::string& hint, int depth);
  absl::StatusOr<std::string> Object(const Json& schema,
                                     const std::string& path,
                                     const std::string& hint, int depth);
  // A JSON string key (without escapes) that is none of `names`: a trie of
  // the names where every node also offers any other character.
  std::string KeyOtherThan(const std::vector<std::string>& names,
                           const std::string& hint);

  const Json& root_;
  std::vector<std::pair<std::string, std::string>> rules_;
  absl::flat_hash_map<std::string, size_t> rule_index_;
  absl::flat_hash_set<std::string> reserved_;
  absl::flat_hash_map<std::string, std::string> ref_rules_;  // pointer -> rule
};

}  // namespace lumen::engine::constrained
