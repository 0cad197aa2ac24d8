#pragma once
// Typed access to the members of a JSON request object (nlohmann::json), with
// errors that name the member the way the client wrote it: "`top_p` must be
// a number (got string)". Every error is InvalidArgument carrying the
// member's name as the field payload of server/request_builder.h, so the
// HTTP error object can report it as `param`. A JSON null counts as absent,
// as OpenAI's API treats it. Pure functions; any thread.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace lumen::server::http {

// Ordered: a request's tools and tool calls reach the chat template (and the
// tool-call grammar's property order) in the order the client wrote them.
using Json = nlohmann::ordered_json;

// Parses a request body. InvalidArgument (with the parser's position) for
// malformed JSON and for nesting deeper than `max_depth` levels (deep input
// would otherwise cost recursion wherever it is walked).
absl::StatusOr<Json> ParseJson(absl::string_view text, int max_depth = 64);

// "string", "integer", "number", "boolean", "array", "object" or "null".
const char* JsonTypeName(const Json& value);

// The members of one JSON object; `prefix` is prepended to member names in
// errors (e.g. "rag." or "messages[2].").
class JsonFields {
 public:
  JsonFields(const Json& object, std::string prefix = "")
      : object_(object), prefix_(std::move(prefix)) {}

  // The member, or null when absent or null.
  const Json* Find(absl::string_view name) const;
  // The full name of a member in errors: prefix + name.
  std::string Name(absl::string_view name) const;

  absl::StatusOr<std::optional<std::string>> String(
      absl::string_view name) const;
  absl::StatusOr<std::optional<bool>> Bool(absl::string_view name) const;
  // Any JSON number, finite.
  absl::StatusOr<std::optional<double>> Number(absl::string_view name) const;
  // A JSON integer in [min, max].
  absl::StatusOr<std::optional<int64_t>> Integer(absl::string_view name,
                                                 int64_t min,
                                                 int64_t max) const;
  // An unsigned 64-bit integer (seeds).
  absl::StatusOr<std::optional<uint64_t>> Unsigned(
      absl::string_view name) const;
  absl::StatusOr<const Json*> Object(absl::string_view name) const;
  absl::StatusOr<const Json*> Array(absl::string_view name) const;

 private:
  const Json& object_;
  std::string prefix_;
};

// InvalidArgument "`name` must be <what> (got <type>)" naming `name`.
absl::Status TypeError(absl::string_view name, absl::string_view what,
                       const Json& got);

}  // namespace lumen::server::http
