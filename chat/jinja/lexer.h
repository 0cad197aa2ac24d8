#pragma once
// Lexer: template source -> tokens, with jinja2's whitespace rules as Hugging
// Face configures them (trim_blocks, lstrip_blocks, `{%-`/`-%}` and `+`
// markers, one trailing newline dropped, newlines normalized to "\n").
// Comments vanish; `{% raw %}` bodies become text. Pure and thread-safe.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumen::chat::jinja {

// 1-based line and byte column in the normalized source.
struct SourcePos {
  int line = 1;
  int column = 1;
};

enum class TokenKind : uint8_t {
  kText,           // template text outside tags
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,  // text holds the decoded value
  kInteger,
  kFloat,
  kOperator,  // text is the operator: "+", "//", "==", "(", ...
  kEnd,       // end of the template
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  SourcePos pos;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
};

struct LexerOptions {
  bool trim_blocks = true;    // drop the first newline after a block tag
  bool lstrip_blocks = true;  // drop spaces before a block tag on its line
};

// Tokens of `source`, ending with kEnd. InvalidArgument ("line L, column C:
// ...") for an unterminated tag, string or comment, or an unknown character.
absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view source,
                                            const LexerOptions& options);

// "line L, column C: message", the prefix of every template error.
std::string FormatPos(const SourcePos& pos);

}  // namespace lumen::chat::jinja
