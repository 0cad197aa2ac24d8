#pragma once
// Parser: tokens -> statement tree, following jinja2's grammar and operator
// precedence (filters bind tighter than arithmetic, `~` tighter than `+`,
// `not x is y` is `not (x is y)`). Supported statements: if/elif/else,
// for/else (with `if` filter, unpacking), set (name, ns.attr, block), macro,
// break, continue, filter blocks. Pure and thread-safe.

#include <vector>

#include "absl/status/statusor.h"
#include "chat/jinja/ast.h"
#include "chat/jinja/lexer.h"
#include "chat/jinja/options.h"

namespace lumen::chat::jinja {

// InvalidArgument ("line L, column C: ...") for a syntax error, an unknown
// tag, filter or test, or nesting beyond the CompileOptions limits.
absl::StatusOr<StmtList> Parse(const std::vector<Token>& tokens,
                               const CompileOptions& options);

}  // namespace lumen::chat::jinja
