// The lexer, table-driven: token kinds and values, string escapes and number
// forms as Python reads them, jinja2's whitespace rules on the text between
// tags, positions, and every malformed input an InvalidArgument with its
// line and column.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "chat/jinja/lexer.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::chat::jinja {
namespace {

using ::testing::HasSubstr;

// One line per token: "text:abc", "{{", "name:x", "op:|", "int:3", ...
std::string Describe(const std::vector<Token>& tokens) {
  std::vector<std::string> parts;
  for (const Token& t : tokens) {
    switch (t.kind) {
      case TokenKind::kText:
        parts.push_back("text:" + t.text);
        break;
      case TokenKind::kVariableBegin:
        parts.push_back("{{");
        break;
      case TokenKind::kVariableEnd:
        parts.push_back("}}");
        break;
      case TokenKind::kBlockBegin:
        parts.push_back("{%");
        break;
      case TokenKind::kBlockEnd:
        parts.push_back("%}");
        break;
      case TokenKind::kName:
        parts.push_back("name:" + t.text);
        break;
      case TokenKind::kString:
        parts.push_back("str:" + t.text);
        break;
      case TokenKind::kInteger:
        parts.push_back(absl::StrCat("int:", t.int_value));
        break;
      case TokenKind::kFloat:
        parts.push_back(absl::StrCat("float:", t.float_value));
        break;
      case TokenKind::kOperator:
        parts.push_back("op:" + t.text);
        break;
      case TokenKind::kEnd:
        parts.push_back("end");
        break;
    }
  }
  return absl::StrJoin(parts, " ");
}

struct LexCase {
  const char* source;
  const char* tokens;
};

const LexCase kLexCases[] = {
    {"a{{ x|f(1, 'y') }}b",
     "text:a {{ name:x op:| name:f op:( int:1 op:, str:y op:) }} text:b end"},
    {"{% if a == b and c != 2.5 %}",
     "{% name:if name:a op:== name:b name:and name:c op:!= float:2.5 %} end"},
    {"{{ a // b ** c ~ d }}",
     "{{ name:a op:// name:b op:** name:c op:~ name:d }} end"},
    {"{{ x[1:-1] }}", "{{ name:x op:[ int:1 op:: op:- int:1 op:] }} end"},
    // Numbers: underscores, hex/octal/binary, exponents; no float after '.'.
    {"{{ 1_000 0x1F 0o17 0b101 1e3 2.5e-1 x.0 }}",
     "{{ int:1000 int:31 int:15 int:5 float:1000 float:0.25 name:x op:. "
     "int:0 }} end"},
    // Python string escapes; unknown escapes keep their backslash.
    {R"({{ 'a\'b' "c\"d" '\n\t\\' '\x41\u00e9' '\d' }})",
     "{{ str:a'b str:c\"d str:\n\t\\ str:A\xC3\xA9 str:\\d }} end"},
    // Brackets balance: '}}' inside a dict literal is not the end of the tag.
    {"{{ {'a': {'b': 1}} }}",
     "{{ op:{ str:a op:: op:{ str:b op:: int:1 op:} op:} }} end"},
    // Comments vanish; raw blocks are text.
    {"a{# c #}b{% raw %}{{ x }}{% endraw %}c",
     "text:a text:b text:{{ x }} text:c end"},
    // trim_blocks drops the newline after a block tag, not after {{ }}.
    {"{% if x %}\nA\n{% endif %}\n{{ y }}\nB",
     "{% name:if name:x %} text:A\n {% name:endif %} {{ name:y }} text:\nB "
     "end"},
    // lstrip_blocks drops the indentation before a block tag or comment.
    {"a\n    {% if x %}b", "text:a\n {% name:if name:x %} text:b end"},
    {"a\n    {# c #}b", "text:a\n text:b end"},
    {"a\n    {{ x }}", "text:a\n     {{ name:x }} end"},
    // ... but not when text precedes the tag on its line, or with '+'.
    {"a  {% if x %}", "text:a   {% name:if name:x %} end"},
    {"a\n  {%+ if x %}", "text:a\n   {% name:if name:x %} end"},
    // '-' strips all whitespace on its side, newlines included.
    {"a \n {%- if x -%} \n b", "text:a {% name:if name:x %} text:b end"},
    {"a \n {{- x -}} \n b", "text:a {{ name:x }} text:b end"},
    {"a \n {#- c -#} \n b", "text:a text:b end"},
    // '+%}' keeps the newline trim_blocks would drop.
    {"{% if x +%}\nA", "{% name:if name:x %} text:\nA end"},
    // Newlines are normalized and one trailing newline is dropped.
    {"a\r\nb\rc\n", "text:a\nb\nc end"},
    {"a\n\n", "text:a\n end"},
};

class LexTableTest : public ::testing::TestWithParam<LexCase> {};

TEST_P(LexTableTest, Tokens) {
  const LexCase& c = GetParam();
  auto tokens = Tokenize(c.source, LexerOptions{});
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(Describe(*tokens), c.tokens) << c.source;
}

INSTANTIATE_TEST_SUITE_P(Jinja2, LexTableTest, ::testing::ValuesIn(kLexCases));

TEST(Lexer, WithoutTrimAndLstripKeepsWhitespace) {
  LexerOptions plain;
  plain.trim_blocks = false;
  plain.lstrip_blocks = false;
  auto tokens = Tokenize("a\n  {% if x %}\nb", plain);
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(Describe(*tokens), "text:a\n   {% name:if name:x %} text:\nb end");
}

TEST(Lexer, PositionsAreLineAndByteColumn) {
  auto tokens = Tokenize("ab\n  {{ x.y }}", LexerOptions{});
  ASSERT_TRUE(tokens.ok());
  // text, {{, x, ., y, }}, end
  ASSERT_EQ(tokens->size(), 7u);
  EXPECT_EQ((*tokens)[1].pos.line, 2);
  EXPECT_EQ((*tokens)[1].pos.column, 3);
  EXPECT_EQ((*tokens)[2].pos.column, 6);
  EXPECT_EQ((*tokens)[4].pos.column, 8);
}

struct LexErrorCase {
  const char* source;
  const char* message;
};

const LexErrorCase kLexErrors[] = {
    {"{{ 'abc }}", "line 1, column 4: unterminated string"},
    {"a\n{# never closed", "line 2, column 1: missing end of comment tag"},
    {"{% if x", "line 1, column 1: unexpected end of template: missing %}"},
    {"{{ x", "missing }}"},
    {"{% raw %}abc", "missing end of raw directive"},
    {"{{ x ? y }}", "line 1, column 6: unexpected character '?'"},
    {"{{ x) }}", "line 1, column 5: unexpected ')'"},
    {"{{ (x] }}", "unexpected ']', expected ')'"},
    {"{{ 99999999999999999999 }}", "integer literal too large"},
    {R"({{ '\x4' }})", "truncated \\x escape"},
    {R"({{ '\N{DASH}' }})", "\\N{...} escapes are not supported"},
    {"{{ 0x }}", "invalid number literal"},
};

class LexErrorTest : public ::testing::TestWithParam<LexErrorCase> {};

TEST_P(LexErrorTest, InvalidArgumentWithPosition) {
  const LexErrorCase& c = GetParam();
  EXPECT_THAT(
      Tokenize(c.source, LexerOptions{}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
      << c.source;
}

INSTANTIATE_TEST_SUITE_P(Errors, LexErrorTest, ::testing::ValuesIn(kLexErrors));

}  // namespace
}  // namespace lumen::chat::jinja
