// The parser: syntax errors, unknown or unsupported tags, filters and tests
// fail at compile time with their line and column; nesting is bounded.
// (Precedence and statement semantics are checked by rendering, in
// jinja_eval_test.cc.)

#include <string>

#include "absl/strings/str_cat.h"
#include "chat/jinja/parser.h"
#include "chat/jinja/template.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::chat::jinja {
namespace {

using ::testing::HasSubstr;

struct ParseErrorCase {
  const char* source;
  const char* message;
};

const ParseErrorCase kParseErrors[] = {
    {"{% for %}", "line 1, column 8: expected a name, got '%}'"},
    {"{% for x on y %}{% endfor %}", "expected 'in', got 'on'"},
    {"{% if x %}abc", "unexpected end of template, expected 'elif'"},
    {"{% for x in y %}\n{% endif %}",
     "line 2, column 4: unknown or misplaced tag 'endif'"},
    {"{% endif %}", "unknown or misplaced tag 'endif'"},
    {"{{ x | nofilter }}", "line 1, column 6: no filter named 'nofilter'"},
    {"{{ x is notatest }}", "line 1, column 6: no test named 'notatest'"},
    {"{% include 'other.jinja' %}", "the 'include' tag is not supported"},
    {"{% extends 'base' %}", "the 'extends' tag is not supported"},
    {"{% import 'm' as m %}", "the 'import' tag is not supported"},
    {"{% call m() %}{% endcall %}", "the 'call' tag is not supported"},
    {"{% break %}", "'break' outside of a loop"},
    {"{% for x in y %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}",
     "'continue' outside of a loop"},
    {"{% for x in y recursive %}{% endfor %}",
     "recursive loops are not supported"},
    {"{{ }}", "expected an expression"},
    {"{{ 1 + }}", "unexpected '}}'"},
    {"{{ f(a=1, 2) }}", "positional argument follows keyword argument"},
    {"{{ f(*args) }}", "*args and **kwargs in calls are not supported"},
    {"{% macro m(a=1, b) %}{% endmacro %}",
     "non-default argument follows default"},
    {"{% set true = 1 %}", "cannot assign to 'true'"},
    {"{{ x[1, 2] }}", "tuple subscripts are not supported"},
    {"{{ x is defined is defined }}", "tests cannot be chained"},
    {"{{ a.'b' }}", "expected a name or number after '.'"},
    {"{% if x %}{% else %}{% else %}{% endif %}",
     "unknown or misplaced tag 'else'"},
};

class ParseErrorTest : public ::testing::TestWithParam<ParseErrorCase> {};

TEST_P(ParseErrorTest, CompileFailsWithPosition) {
  const ParseErrorCase& c = GetParam();
  EXPECT_THAT(
      Template::Compile(c.source),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
      << c.source;
}

INSTANTIATE_TEST_SUITE_P(Errors, ParseErrorTest,
                         ::testing::ValuesIn(kParseErrors));

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(ParserLimits, ExpressionNestingIsBounded) {
  CompileOptions o;
  o.max_expression_depth = 40;
  // Parentheses, unary chains, left-deep operator chains and filter chains
  // all count, so no input can make the evaluator recurse deeply.
  for (const std::string& source :
       {"{{ " + Repeat("(", 60) + "1" + Repeat(")", 60) + " }}",
        "{{ " + Repeat("not ", 60) + "1 }}", "{{ " + Repeat("- ", 60) + "1 }}",
        "{{ 1" + Repeat(" + 1", 60) + " }}",
        "{{ x" + Repeat("|trim", 60) + " }}", "{{ x" + Repeat(".a", 60) + " }}",
        "{{ " + Repeat("[", 60) + Repeat("]", 60) + " }}"}) {
    EXPECT_THAT(Template::Compile(source, o),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("nested deeper than 40 levels")))
        << source.substr(0, 40);
  }
  // Within the limit it parses.
  EXPECT_TRUE(Template::Compile("{{ 1" + Repeat(" + 1", 30) + " }}", o).ok());
}

TEST(ParserLimits, BlockNestingIsBounded) {
  CompileOptions o;
  o.max_block_depth = 10;
  const std::string deep =
      Repeat("{% if true %}", 11) + "x" + Repeat("{% endif %}", 11);
  EXPECT_THAT(Template::Compile(deep, o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("blocks nested deeper than 10 levels")));
  const std::string ok =
      Repeat("{% if true %}", 10) + "x" + Repeat("{% endif %}", 10);
  auto tmpl = Template::Compile(ok, o);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  EXPECT_EQ(*(*tmpl)->Render(Json::object()), "x");
}

TEST(ParserLimits, SourceSizeIsBounded) {
  CompileOptions o;
  o.max_source_bytes = 100;
  EXPECT_THAT(Template::Compile(std::string(101, 'x'), o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("larger than 100")));
}

}  // namespace
}  // namespace lumen::chat::jinja
