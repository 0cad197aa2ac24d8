// GBNF parsing and the byte automaton: table tests of what grammars match,
// errors with exact messages, and UTF-8 range compilation against a naive
// encoder.

#include <string>
#include <vector>

#include "engine/constrained/gbnf_parser.h"
#include "engine/constrained/grammar_automaton.h"
#include "engine/constrained/utf8_ranges.h"
#include "gtest/gtest.h"
#include "tests/engine/constrained_test_util.h"
#include "tests/test_support.h"

namespace lumen::engine::constrained {
namespace {

using ::lumen::testing::GrammarMatches;

struct MatchCase {
  std::string name;
  std::string grammar;
  std::vector<std::string> accept;
  std::vector<std::string> reject;
};

class GbnfMatchTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(GbnfMatchTest, AcceptsAndRejects) {
  const MatchCase& c = GetParam();
  auto g = ParseGbnf(c.grammar);
  ASSERT_TRUE(g.ok()) << g.status();
  for (const std::string& s : c.accept) {
    EXPECT_TRUE(GrammarMatches(*g, s))
        << c.name << " should accept \"" << s << "\"";
  }
  for (const std::string& s : c.reject) {
    EXPECT_FALSE(GrammarMatches(*g, s))
        << c.name << " should reject \"" << s << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GbnfMatchTest,
    ::testing::Values(
        MatchCase{"literal", R"(root ::= "abc")", {"abc"}, {"", "ab", "abcd"}},
        MatchCase{"alternation and grouping",
                  R"(root ::= ("a" | "bc") "d")",
                  {"ad", "bcd"},
                  {"d", "abcd", "bd"}},
        MatchCase{"star plus optional",
                  R"(root ::= "x"* "y"+ "z"?)",
                  {"y", "xxyy", "yz", "xyyyz"},
                  {"", "x", "z", "yzz"}},
        MatchCase{
            "bounded repetition",
            R"(root ::= [ab]{2,3} "-" "c"{2} "-" "d"{1,} "-" "e"{,2})",
            {"ab-cc-d-", "bab-cc-ddd-ee"},
            {"a-cc-d-", "abab-cc-d-", "ab-c-d-", "ab-cc--", "ab-cc-d-eee"}},
        MatchCase{"char classes, ranges, negation",
                  R"(root ::= [a-c0-9_] [^a-z] [\x41-\x43])",
                  {"a!A", "9ZC",
                   "_\xc3\xa9"
                   "B"},
                  {"d!A", "aaA", "a!D"}},
        MatchCase{"escapes",
                  "root ::= \"\\t\\n\\\\\\\"\\x41\\u00e9\\U0001F600\" [\\]\\[]",
                  {"\t\n\\\"A\xc3\xa9\xf0\x9f\x98\x80]",
                   "\t\n\\\"A\xc3\xa9\xf0\x9f\x98\x80["},
                  {"\t\n\\\"A\xe9\xf0\x9f\x98\x80]"}},
        MatchCase{"any character is one code point",
                  R"(root ::= . . ".")",
                  {"ab.", "\xe6\x97\xa5\xe6\x9c\xac.", "\n\xf0\x9f\x98\x80."},
                  {"a.", "abc.", "\xe6\x97\xa5.", "\xe6\x97.."}},
        MatchCase{"negated class over UTF-8",
                  R"(root ::= [^"\\]+)",
                  {"h\xc3\xa9llo", "\xe4\xb8\xad\xe6\x96\x87"},
                  {"a\"b", "\\", "\xc3", "\xed\xa0\x80" /* surrogate */}},
        MatchCase{"non-ASCII range",
                  "root ::= [\\u4e00-\\u9fff]{2}",
                  {"\xe4\xb8\xad\xe6\x96\x87"},
                  {"\xe4\xb8\xad", "ab", "\xe3\x81\x82\xe4\xb8\xad"}},
        MatchCase{"rules, recursion and comments",
                  "# nested lists\n"
                  "root ::= list   # the start\n"
                  "list ::= \"[\" ( item (\",\" item)* )? \"]\"\n"
                  "item ::= [0-9]+ | list\n",
                  {"[]", "[1,2]", "[[],[3,[4]]]"},
                  {"[", "[1,]", "[,]", "[[]"}},
        MatchCase{"multi-line alternatives and empty alternative",
                  "root ::= (\n  \"a\" |\n  \"b\"\n) tail\n"
                  "tail ::= | \"!\"\n"
                  "  | \"?\"\n",
                  {"a", "b!", "a?"},
                  {"", "ab", "a!!"}},
        MatchCase{"llama.cpp json.gbnf",
                  R"(root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
)",
                  {R"({"a": [1, 2.5, -3e4, true, null, "x\"y"]})", "{}",
                   "{\"k\":{\"n\":[]}} "},
                  {R"({"a": })", R"({'a': 1})", R"({"a": 01x})"}}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (char& ch : n)
        ch = isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return n;
    });

struct ErrorCase {
  std::string grammar;
  std::string message;
};

TEST(GbnfErrorTest, NamesLineAndColumn) {
  const std::vector<ErrorCase> cases = {
      {"", "grammar: no 'root' rule (the grammar starts at root ::= ...)"},
      {"root ::= \"a\"\nfoo = \"b\"",
       "grammar line 2, column 5: expected '::=' after rule name 'foo'"},
      {"root ::= \"abc",
       "grammar line 1, column 10: unterminated string literal"},
      {"root ::= [a-",
       "grammar line 1, column 10: unterminated character class"},
      {"root ::= item\n", "grammar line 1, column 10: undefined rule 'item'"},
      {"root ::= \"a\"\nroot ::= \"b\"",
       "grammar line 2, column 1: rule 'root' is defined twice (first at line "
       "1, column 1)"},
      {"root ::= \"\\q\"",
       "grammar line 1, column 11: unknown escape '\\q' (known: \\x \\u \\U "
       "\\t "
       "\\n \\r \\\\ \\\" \\[ \\] \\- \\^ \\/)"},
      {"root ::= \"\\x4\"",
       "grammar line 1, column 11: escape '\\x' needs 2 hex digits"},
      {"root ::= \"\\uD800\"",
       "grammar line 1, column 11: escape U+D800 is not a character "
       "(surrogate or beyond U+10FFFF)"},
      {"root ::= [z-a]",
       "grammar line 1, column 11: character range U+007A-U+0061 is reversed"},
      {"root ::= ( \"a\" | \"b\"",
       "grammar line 1, column 21: expected ')' to close the '(' at line 1, "
       "column 10, found end of input"},
      {"root ::= * \"a\"",
       "grammar line 1, column 10: '*' has nothing before it to repeat"},
      {"root ::= \"a\"{3,1}",
       "grammar line 1, column 13: repetition {3,1} has its maximum below its "
       "minimum"},
      {"root ::= \"a\"{x}",
       "grammar line 1, column 13: expected {m}, {m,}, {m,n} or {,n}"},
      {"root ::= \"a\"{100001}",
       "grammar line 1, column 14: repetition count above the limit of 10000"},
      {"root ::= <think>",
       "grammar line 1, column 10: token references (<...>) are not supported"},
      {"root ::= \"a\" )",
       "grammar line 1, column 14: unexpected ')' in rule 'root'"},
      {"root ::= \"\xc3\xa9\" [\xff]",
       "grammar line 1, column 15: invalid UTF-8"},
      {"root ::= [^\\x00-\\U0010FFFF]",
       "grammar line 1, column 10: character class matches no character"},
      {"root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"",
       "grammar: rule 'expr' is left-recursive (it can reach itself before "
       "matching any character); write the repetition with * or + instead, "
       "and do not repeat something that can be empty"},
      {"root ::= (\"a\"?)*",
       "grammar: rule 'root' is left-recursive (it can reach itself before "
       "matching any character); write the repetition with * or + instead, "
       "and do not repeat something that can be empty"},
      {"root ::= \"a\" loop\nloop ::= \"b\" loop",
       "grammar: rule 'loop' can never complete: each of its alternatives "
       "needs itself or matches nothing"},
  };
  // Deep nesting is refused, not a stack overflow.
  EXPECT_THAT(
      ParseGbnf("root ::= " + std::string(100000, '(')),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          "grammar line 1, column 211: parentheses nested deeper than 200"));
  for (const ErrorCase& c : cases) {
    EXPECT_THAT(ParseGbnf(c.grammar),
                StatusIs(absl::StatusCode::kInvalidArgument, c.message))
        << c.grammar;
  }
}

TEST(GbnfTest, RightRecursionComesBackToTheSameState) {
  // The matcher treats a repetition as a tail call: a long string visits a
  // bounded number of states.
  auto g = ParseGbnf(R"(root ::= "\"" [a-z]* "\"")");
  ASSERT_TRUE(g.ok());
  auto a = GrammarAutomaton::Create(std::make_shared<Grammar>(*g), {});
  ASSERT_TRUE(a.ok());
  int32_t s = (*a)->Next((*a)->initial_state(), '"');
  const int32_t inside = s;
  for (int i = 0; i < 1000; ++i) s = (*a)->Next(s, 'a' + i % 26);
  EXPECT_EQ(s, inside);
  EXPECT_LE((*a)->num_states(), 4);
  s = (*a)->Next(s, '"');
  EXPECT_TRUE((*a)->IsAccepting(s));
  EXPECT_FALSE((*a)->CanContinue(s));
}

TEST(GbnfTest, AmbiguityLimitIsAnError) {
  // Every way to split a run of a's stays alive.
  // After n a's, a parse may owe any number of b's up to n.
  auto g = ParseGbnf(R"(root ::= x
x ::= "a" x "b" | "a" x | "")");
  ASSERT_TRUE(g.ok()) << g.status();
  AutomatonLimits limits;
  limits.max_stacks_per_state = 8;
  auto a = GrammarAutomaton::Create(std::make_shared<Grammar>(*g), limits);
  ASSERT_TRUE(a.ok());
  int32_t s = (*a)->initial_state();
  for (int i = 0; i < 20 && s != GrammarAutomaton::kDead; ++i) {
    s = (*a)->Next(s, 'a');
  }
  EXPECT_THAT((*a)->status(), StatusIs(absl::StatusCode::kResourceExhausted,
                                       ::testing::HasSubstr("too ambiguous")));
}

// Naive UTF-8 encoder, written apart from the library's.
std::string NaiveUtf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

bool InSequences(const std::vector<Utf8Sequence>& seqs, const std::string& s) {
  for (const Utf8Sequence& q : seqs) {
    if (q.length != static_cast<int>(s.size())) continue;
    bool in = true;
    for (int i = 0; i < q.length; ++i) {
      const auto b = static_cast<uint8_t>(s[i]);
      in = in && b >= q.lo[i] && b <= q.hi[i];
    }
    if (in) return true;
  }
  return false;
}

TEST(Utf8RangesTest, SequencesMatchExactlyTheRangesEncodings) {
  const std::vector<CodepointRanges> cases = {
      {{0, kMaxCodepoint}},
      {{'a', 'z'}, {0xE9, 0xE9}},
      {{0x7F, 0x800}},
      {{0x4E00, 0x9FFF}},
      {{0xFFFF, 0x10000}, {0x10FFFE, 0x10FFFF}},
      {{0x1234, 0x5678}, {0xABCDE, 0xFEDCB}},
  };
  for (CodepointRanges ranges : cases) {
    Normalize(&ranges);
    RemoveSurrogates(&ranges);
    const std::vector<Utf8Sequence> seqs = ToUtf8Sequences(ranges);
    for (uint32_t cp = 0; cp <= kMaxCodepoint; cp += (cp < 0x20000 ? 1 : 97)) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      bool want = false;
      for (auto [lo, hi] : ranges) want = want || (cp >= lo && cp <= hi);
      ASSERT_EQ(InSequences(seqs, NaiveUtf8(cp)), want) << std::hex << cp;
    }
  }
}

TEST(Utf8RangesTest, ComplementSkipsSurrogates) {
  const CodepointRanges c = Complement({{'a', 'a'}});
  EXPECT_EQ(
      c, (CodepointRanges{{0, 0x60}, {0x62, 0xD7FF}, {0xE000, kMaxCodepoint}}));
}

}  // namespace
}  // namespace lumen::engine::constrained
