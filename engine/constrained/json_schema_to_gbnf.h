#pragma once
// JSON Schema -> GBNF, for the documented subset (docs/structured-output.md):
//   type (one or a list), enum, const, anyOf, oneOf (treated as anyOf),
//   $ref to local pointers (#, #/$defs/..., #/definitions/...),
//   object: properties, required, additionalProperties (bool or schema),
//   array: items, minItems, maxItems,
//   string: minLength, maxLength, pattern, format (date, time, date-time,
//           uuid),
//   integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum,
//   number: minimum, maximum (whole-number values),
//   boolean, null; annotations (title, description, default, examples, ...)
//   are ignored.
// The grammar produces a subset of the valid documents: declared properties
// in declaration order (required ones first), no extra properties unless
// additionalProperties allows them (or nothing is declared), bounded
// whitespace (a space, or a newline and up to 20 spaces/tabs, between
// tokens; none before or after the document) so a model cannot loop on
// whitespace, at most 16 integer and 16 fraction digits. Pure; any thread.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumen::engine::constrained {

// GBNF text (start rule `root`) for the schema document `schema_json`.
// InvalidArgument "json_schema: <problem> at <JSON pointer>" for invalid JSON,
// an unsupported keyword, or a schema nothing can satisfy.
absl::StatusOr<std::string> JsonSchemaToGbnf(absl::string_view schema_json);

// The same, plus one rule per entry: a rule named entry.first (a GBNF rule
// name, not used by the converter's own rules) for the sub-schema at JSON
// pointer entry.second ("/properties/city"), whose $refs resolve in the
// whole document. For grammars that place a schema's values in markup of
// their own (Qwen3-Coder's tool calls). `strings_without_lt`: strings never
// hold a raw '<' (only its escape \u003c), so a value cannot close the
// markup around it (strings with a pattern keep what their pattern allows).
// InvalidArgument as above, or "no schema at <pointer>".
absl::StatusOr<std::string> JsonSchemaToGbnf(
    absl::string_view schema_json,
    const std::vector<std::pair<std::string, std::string>>& entries,
    bool strings_without_lt = false);

// GBNF text for any JSON object (OpenAI's response_format json_object).
std::string JsonObjectGbnf();

}  // namespace lumen::engine::constrained
