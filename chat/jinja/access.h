#pragma once
// Reading parts of values as jinja2 does: `x.name` (the attribute, a
// whitelisted method, else the item), `x[key]` (the item, else the
// attribute), slices, and unpacking. Pure functions; errors are
// InvalidArgument without a position.

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "chat/jinja/builtins.h"
#include "chat/jinja/value.h"

namespace lumen::chat::jinja {

// `object.name`. `name_value` is `name` as a string value (shared by the
// Undefined returned when there is no such attribute). Error only when
// `object` is Undefined.
absl::StatusOr<Value> GetAttribute(const Value& object, absl::string_view name,
                                   const Value& name_value);
// `object[key]`; Undefined for a missing key or an index out of range.
absl::StatusOr<Value> GetItem(const Value& object, const Value& key);
// `object[start:stop:step]` of a list or string (Python's index rules).
absl::StatusOr<Value> SliceValue(const Value& object,
                                 std::optional<int64_t> start,
                                 std::optional<int64_t> stop,
                                 std::optional<int64_t> step,
                                 BuiltinContext& ctx);
// The `n` parts of a list or string for `a, b = value`.
absl::StatusOr<std::vector<Value>> Unpack(const Value& value, size_t n);

}  // namespace lumen::chat::jinja
