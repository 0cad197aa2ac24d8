#include "retrieval/keyword_terms.h"

#include "gtest/gtest.h"
#include "retrieval/postgres/pg_keywords.h"
#include "retrieval/sqlite/fts_query.h"

namespace lumen::retrieval {
namespace {

using V = std::vector<std::string>;

TEST(KeywordTermsTest, WordsAndCjkBigramsOnATable) {
  struct Case {
    const char* text;
    V passage, query;
  };
  const Case cases[] = {
      {"Hello, World! 42x",
       {"hello", "world", "42x"},
       {"hello", "world", "42x"}},
      {"ÉCOLE Straße", {"école", "straße"}, {"école", "straße"}},
      {"熊猫吃竹子",
       {"熊", "熊猫", "猫", "猫吃", "吃", "吃竹", "竹", "竹子", "子"},
       {"熊猫", "猫吃", "吃竹", "竹子"}},
      {"茶", {"茶"}, {"茶"}},
      {"Python是一种语言。好",
       {"python", "是", "是一", "一", "一种", "种", "种语", "语", "语言", "言",
        "好"},
       {"python", "是一", "一种", "种语", "语言", "好"}},
      {"  ...  ", {}, {}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(KeywordTerms(c.text, KeywordUse::kPassage), c.passage) << c.text;
    EXPECT_EQ(KeywordTerms(c.text, KeywordUse::kQuery), c.query) << c.text;
  }
}

// SQLite's query side splits scripts written without spaces with the same
// ranges as KeywordTerms (base/unicode.h IsCjk), supplementary-plane
// ideographs included.
TEST(FtsQueryTest, LatinWordsWholeAndCjkRunsAsTrigrams) {
  EXPECT_EQ(sqlite::FtsQuery("熊猫吃竹子"),
            "\"熊猫吃\" OR \"猫吃竹\" OR \"吃竹子\"");
  EXPECT_EQ(sqlite::FtsQuery("tea, 熊猫 熊猫吃 a"), "\"tea\" OR \"熊猫吃\"");
  // U+20000..U+20003 (CJK extension B), then after a Latin word.
  EXPECT_EQ(sqlite::FtsQuery("\U00020000\U00020001\U00020002\U00020003"),
            "\"\U00020000\U00020001\U00020002\" OR "
            "\"\U00020001\U00020002\U00020003\"");
  EXPECT_EQ(sqlite::FtsQuery("abc\U00020000\U00020001\U00020002"),
            "\"abc\" OR \"\U00020000\U00020001\U00020002\"");
  EXPECT_EQ(sqlite::FtsQuery("a \"b\" ..."), "");
}

TEST(PgKeywordsTest, QuotedLexemesWithPositions) {
  EXPECT_EQ(postgres::TsVector("熊猫 熊猫"), "'熊':1,4 '熊猫':2,5 '猫':3,6");
  EXPECT_EQ(postgres::TsVector("Tea, tea and TEA"), "'and':3 'tea':1,2,4");
  EXPECT_EQ(postgres::TsQuery("熊猫吃 tea tea"), "'tea' | '熊猫' | '猫吃'");
  EXPECT_EQ(postgres::TsQuery("!?"), "");
}

}  // namespace
}  // namespace lumen::retrieval
