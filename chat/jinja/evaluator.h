#pragma once
// Evaluator: runs a parsed template over variables and returns the text.
// Scoping follows jinja2: each loop iteration, macro call and block set has
// its own scope (a `set` inside a loop does not leak; namespace() is how
// templates carry state out), `if` blocks share their enclosing scope, and
// macros see the template's top-level variables at the time of the call.
//
// Every resource is bounded by RenderOptions::limits. Errors are
// InvalidArgument "line L, column C: ..." or RaisedError(...). A render uses
// only its own state: one template may render on many threads at once.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "chat/jinja/ast.h"
#include "chat/jinja/options.h"
#include "chat/jinja/value.h"

namespace lumen::chat::jinja {

// The template's top-level names and their values, borrowed (not copied) for
// the duration of a render.
using Variables = absl::Span<const std::pair<absl::string_view, const Json*>>;

absl::StatusOr<std::string> Evaluate(const StmtList& program,
                                     Variables variables,
                                     const RenderOptions& options);

}  // namespace lumen::chat::jinja
