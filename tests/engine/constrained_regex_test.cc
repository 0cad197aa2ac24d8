// Regular expressions -> grammar: every string of a small alphabet up to a
// length is matched as std::regex (ECMAScript, an independent engine)
// full-matches it; unsupported syntax is refused with a message naming it.

#include <regex>
#include <string>
#include <vector>

#include "engine/constrained/constraint.h"
#include "engine/constrained/regex_to_gbnf.h"
#include "gtest/gtest.h"
#include "tests/engine/constrained_test_util.h"
#include "tests/test_support.h"

namespace lumen::engine::constrained {
namespace {

using ::lumen::testing::GrammarMatches;

// All strings over `alphabet` of length <= max_len.
std::vector<std::string> AllStrings(const std::string& alphabet, int max_len) {
  std::vector<std::string> out = {""};
  size_t begin = 0;
  for (int len = 1; len <= max_len; ++len) {
    const size_t end = out.size();
    for (size_t i = begin; i < end; ++i) {
      for (char c : alphabet) out.push_back(out[i] + c);
    }
    begin = end;
  }
  return out;
}

struct RegexCase {
  std::string regex;
  std::string alphabet;  // strings over it are compared with std::regex
  int max_len;
};

class RegexAgreesWithStdRegex : public ::testing::TestWithParam<RegexCase> {};

TEST_P(RegexAgreesWithStdRegex, OnEveryShortString) {
  const RegexCase& c = GetParam();
  auto g = CompileConstraintGrammar({ConstraintKind::kRegex, c.regex});
  ASSERT_TRUE(g.ok()) << g.status();
  const std::regex reference(c.regex, std::regex::ECMAScript);
  int matched = 0;
  for (const std::string& s : AllStrings(c.alphabet, c.max_len)) {
    const bool want = std::regex_match(s, reference);
    matched += want;
    ASSERT_EQ(GrammarMatches(*g, s), want) << c.regex << " on \"" << s << "\"";
  }
  EXPECT_GT(matched, 0) << c.regex;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RegexAgreesWithStdRegex,
    ::testing::Values(
        RegexCase{"abc", "abc", 4}, RegexCase{"a|bc|", "abc", 3},
        RegexCase{"(ab)*c?", "abc", 6}, RegexCase{"a+b{2}c{0,2}", "abc", 6},
        RegexCase{"[a-b]{2,}c", "abc", 5}, RegexCase{"[^a]b*", "abc-", 4},
        RegexCase{"\\d{1,3}(\\.\\d)?", "19.a", 5},
        RegexCase{"\\w+-\\s?\\W", "a_- .", 5},
        RegexCase{"(?:a|b)+?c", "abc", 5}, RegexCase{"^(a(b|c)*)?$", "abc", 5},
        RegexCase{"x{2}[.]\\.", "x.y", 5}, RegexCase{"[\\d\\-x]+", "1-xy", 4},
        RegexCase{"a\\{2\\}|b{2}", "a{2}b", 4},
        RegexCase{"(a|b)(c|a){1,2}b?", "abc", 5},
        RegexCase{"[a\\]]+", "]ab", 4},
        RegexCase{"\\x41\\u0042[\\t ]", "AB\t c", 4}),
    [](const auto& info) { return std::to_string(info.index); });

TEST(RegexTest, DotIsOneCodePointExceptNewline) {
  auto g = CompileConstraintGrammar({ConstraintKind::kRegex, "a.b"});
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(GrammarMatches(*g,
                             "a\xc3\xa9"
                             "b"));
  EXPECT_TRUE(GrammarMatches(*g,
                             "a\xf0\x9f\x98\x80"
                             "b"));
  EXPECT_FALSE(GrammarMatches(*g, "a\nb"));
  EXPECT_FALSE(GrammarMatches(*g,
                              "a\xc3"
                              "b"));  // half a character
}

TEST(RegexTest, JsonStringContentEscapesWhatJsonMust) {
  // Inside a JSON string a quote, a backslash and control characters appear
  // escaped.
  auto expr = RegexToGbnf("a[\"\\\\]\\n?", RegexTarget::kJsonStringContent);
  ASSERT_TRUE(expr.ok()) << expr.status();
  auto g = CompileConstraintGrammar(
      {ConstraintKind::kGrammar, "root ::= " + *expr + "\n"});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(GrammarMatches(*g, "a\\\""));
  EXPECT_TRUE(GrammarMatches(*g, "a\\\\\\n"));
  EXPECT_FALSE(GrammarMatches(*g, "a\""));
  EXPECT_FALSE(GrammarMatches(*g, "a\\\"\n"));
}

TEST(RegexTest, UnsupportedSyntaxIsNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\\1", "regex column 2: backreference \\1 is not supported"},
      {"(?=a)b",
       "regex column 1: lookaround (?=, (?!, (?<=, (?<! is not supported"},
      {"\\bword", "regex column 1: word boundary \\b is not supported"},
      {"a^b",
       "regex column 2: anchor '^' inside the regex (the whole output "
       "must match; '^' may only start it) is not supported"},
      {"a$b",
       "regex column 2: anchor '$' inside the regex (the whole output "
       "must match; '$' may only end it) is not supported"},
      {"(?i)abc",
       "regex column 1: group syntax '(?' (flags, atomic groups, "
       "comments) is not supported"},
      {"\\p{L}", "regex column 1: Unicode property \\p / \\P is not supported"},
      {"[[:alpha:]]", "regex column 2: POSIX class [:name:] is not supported"},
      {"a*+", "regex column 3: possessive quantifier is not supported"},
      {"(a*)*",
       "regex column 5: unbounded repetition of something that can "
       "match the empty string (like (a*)*) is not supported"},
      {"(ab", "regex column 1: missing ')'"},
      {"ab)", "regex column 3: unbalanced ')'"},
      {"*a", "regex column 1: '*' has nothing before it to repeat"},
      {"[b-a]", "regex column 2: character range is reversed"},
      {"[abc", "regex column 1: unterminated character class"},
      {"\\q", "regex column 1: unknown escape '\\q'"},
      {"a{3,1}",
       "regex column 2: repetition {3,1} has its maximum below its "
       "minimum"},
      {"a{20000}", "regex column 2: repetition count above the limit of 10000"},
      {"ab\\", "regex column 3: trailing backslash"},
  };
  EXPECT_THAT(CompileConstraintGrammar(
                  {ConstraintKind::kRegex, std::string(100000, '(')}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "regex column 202: groups nested deeper than 200"));
  for (const auto& [regex, message] : cases) {
    EXPECT_THAT(CompileConstraintGrammar({ConstraintKind::kRegex, regex}),
                StatusIs(absl::StatusCode::kInvalidArgument, message))
        << regex;
  }
}

}  // namespace
}  // namespace lumen::engine::constrained
