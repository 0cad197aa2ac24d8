#include "chat/jinja/template.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chat/jinja/evaluator.h"
#include "chat/jinja/lexer.h"
#include "chat/jinja/parser.h"

namespace lumen::chat::jinja {

absl::StatusOr<std::unique_ptr<Template>> Template::Compile(
    absl::string_view source, const CompileOptions& options) {
  if (static_cast<int64_t>(source.size()) > options.max_source_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("template of ", source.size(), " bytes is larger than ",
                     options.max_source_bytes));
  }
  LexerOptions lexer_options;
  lexer_options.trim_blocks = options.trim_blocks;
  lexer_options.lstrip_blocks = options.lstrip_blocks;
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source, lexer_options));
  ASSIGN_OR_RETURN(StmtList program, Parse(tokens, options));
  return std::unique_ptr<Template>(new Template(std::move(program)));
}

absl::StatusOr<std::string> Template::Render(
    const Json& variables, const RenderOptions& options) const {
  if (!variables.is_object()) {
    return absl::InvalidArgumentError("template variables must be an object");
  }
  std::vector<std::pair<absl::string_view, const Json*>> bindings;
  bindings.reserve(variables.size());
  for (auto it = variables.begin(); it != variables.end(); ++it)
    bindings.emplace_back(it.key(), &it.value());
  return Evaluate(program_, bindings, options);
}

absl::StatusOr<std::string> Template::Render(
    absl::Span<const std::pair<absl::string_view, const Json*>> variables,
    const RenderOptions& options) const {
  return Evaluate(program_, variables, options);
}

}  // namespace lumen::chat::jinja
