#pragma once
// A compiled Jinja template: the small jinja2 dialect that chat templates use
// (see chat/jinja/README.md for what is supported), rendered byte for byte as
// Python's jinja2 renders it with Hugging Face's settings.
//
// A template from a model file is untrusted input: it reaches only the
// builtins of builtins.h, and every render is bounded by jinja::Limits.
// Compile once, render many times, from any number of threads.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "chat/jinja/ast.h"
#include "chat/jinja/options.h"
#include "chat/jinja/value.h"

namespace lumen::chat::jinja {

class Template {
 public:
  // Parses `source`. InvalidArgument "line L, column C: ..." for a syntax
  // error, an unsupported tag or an unknown filter or test.
  static absl::StatusOr<std::unique_ptr<Template>> Compile(
      absl::string_view source, const CompileOptions& options = {});

  // Renders with `variables`, a JSON object of the template's top-level
  // names. InvalidArgument "line L, column C: ..." when evaluation fails or a
  // limit is reached; a template's own raise_exception(msg) is
  // InvalidArgument with exactly msg, for which IsRaisedError() is true.
  // Thread-safe.
  absl::StatusOr<std::string> Render(const Json& variables,
                                     const RenderOptions& options = {}) const;
  // The same with the top-level names bound to values the caller owns, so
  // that nothing is copied (a render only borrows them).
  absl::StatusOr<std::string> Render(
      absl::Span<const std::pair<absl::string_view, const Json*>> variables,
      const RenderOptions& options = {}) const;

 private:
  explicit Template(StmtList program) : program_(std::move(program)) {}
  const StmtList program_;
};

}  // namespace lumen::chat::jinja
