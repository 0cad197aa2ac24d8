#pragma once
// Python's operators on template values: arithmetic (bools are ints, `/` is
// true division, `//` and `%` floor), `+`/`*` on strings and lists, chained
// comparisons, `in`. Integers are 64-bit: overflow is an error, where Python
// would grow. Errors are InvalidArgument without a position.

#include "absl/status/statusor.h"
#include "chat/jinja/ast.h"
#include "chat/jinja/builtins.h"
#include "chat/jinja/value.h"

namespace lumen::chat::jinja {

absl::StatusOr<Value> ApplyBinary(BinaryOp op, const Value& a, const Value& b,
                                  BuiltinContext& ctx);
// -x and +x.
absl::StatusOr<Value> ApplyUnary(ExprKind kind, const Value& operand);
absl::StatusOr<bool> ApplyCompare(CompareOp op, const Value& a, const Value& b);
// `item in container`.
absl::StatusOr<bool> Contains(const Value& container, const Value& item);

// The error for using an Undefined where a value is needed.
absl::Status UndefinedError(const Value& undefined);

}  // namespace lumen::chat::jinja
