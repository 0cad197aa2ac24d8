#pragma once
// Helpers shared by the filter, test and method implementations: Python-style
// argument binding, iteration, and jinja2's attribute paths ("a.b.0").

#include <initializer_list>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "chat/jinja/builtins.h"
#include "chat/jinja/value.h"

namespace lumen::chat::jinja {

// Binds positional then keyword arguments to `names` (Python's rules); an
// argument not given is nullopt. `extra_positional` allows more positional
// arguments than names (returned in *rest). InvalidArgument names `function`.
absl::StatusOr<std::vector<std::optional<Value>>> BindArgs(
    const CallArgs& args, std::initializer_list<absl::string_view> names,
    absl::string_view function, std::vector<Value>* rest = nullptr);

// The items a for loop would see: list elements, dict keys, string
// characters; Undefined has none. InvalidArgument for other types.
absl::StatusOr<std::vector<Value>> IterateValue(const Value& v,
                                                absl::string_view function);

// item.a.b / item["a"]["b"] with integer parts indexing lists; Undefined when
// a part is missing.
Value AttributePath(const Value& item, absl::string_view path);

// A list value from items that must all be plain (JSON) values.
absl::StatusOr<Value> ListOf(const std::vector<Value>& items,
                             absl::string_view function, BuiltinContext& ctx);

// An argument that must be a string / an int (bools count as ints).
absl::StatusOr<std::string> StringArg(const std::optional<Value>& v,
                                      absl::string_view what,
                                      std::string fallback);
absl::StatusOr<int64_t> IntArg(const std::optional<Value>& v,
                               absl::string_view what, int64_t fallback);

// InvalidArgument "NAME takes no arguments" unless `args` is empty.
absl::Status NoArgs(const CallArgs& args, absl::string_view name);

// A string value made by a builtin: checked against max_output_bytes and
// charged as work.
absl::StatusOr<Value> NewString(std::string s, BuiltinContext& ctx);

// str.replace with the result's size checked against the limits before it
// is built.
absl::StatusOr<Value> ReplaceBounded(absl::string_view s,
                                     absl::string_view old_text,
                                     absl::string_view new_text, int64_t count,
                                     BuiltinContext& ctx);

}  // namespace lumen::chat::jinja
