#pragma once
// The filters, tests, methods and global functions a template may use: the
// whole surface a template can reach. Anything not listed here does not
// exist for a template (an unknown filter or test fails at compile time; an
// unknown attribute is Undefined).
//
// Errors are InvalidArgument without a position (the evaluator adds it);
// raise_exception() returns RaisedError(message). Thread-safe: builtins keep
// no state of their own.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "chat/jinja/options.h"
#include "chat/jinja/value.h"

namespace lumen::chat::jinja {

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<absl::string_view, Value>> keyword;
};

// What a builtin may ask of the render that calls it.
class BuiltinContext {
 public:
  virtual ~BuiltinContext() = default;
  // Counts `units` of work against Limits::max_work; InvalidArgument when the
  // budget is spent.
  virtual absl::Status Charge(int64_t units) = 0;
  virtual const RenderOptions& options() const = 0;
};

// The error of raise_exception(message): InvalidArgument whose message is
// exactly the template's, marked so that callers can tell it apart.
absl::Status RaisedError(absl::string_view message);
bool IsRaisedError(const absl::Status& status);

// Index of a filter / test, or -1 when there is none of that name.
int FindFilter(absl::string_view name);
int FindTest(absl::string_view name);
absl::StatusOr<Value> ApplyFilter(int filter, const Value& subject,
                                  const CallArgs& args, BuiltinContext& ctx);
absl::StatusOr<bool> ApplyTest(int test, const Value& subject,
                               const CallArgs& args, BuiltinContext& ctx);

// The method `name` of a string, dict or loop object, if templates may call
// it (str.strip, dict.items, loop.cycle, ...).
std::optional<Method> FindMethod(const Value& receiver, absl::string_view name);
absl::StatusOr<Value> CallMethod(Method method, const Value& receiver,
                                 const CallArgs& args, BuiltinContext& ctx);

// The global functions by name: range, namespace, raise_exception,
// strftime_now, dict.
absl::Span<const std::pair<absl::string_view, GlobalFunction>>
GlobalFunctions();
absl::StatusOr<Value> CallGlobal(GlobalFunction function, const CallArgs& args,
                                 BuiltinContext& ctx);

// Checks a list/dict value a builtin or the template is about to build from
// `json`: nesting within Limits::max_value_depth, copying charged as work.
absl::Status CheckNewValue(const Json& json, BuiltinContext& ctx);

}  // namespace lumen::chat::jinja
