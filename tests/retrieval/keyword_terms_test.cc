#include "retrieval/keyword_terms.h"

#include "gtest/gtest.h"
#include "retrieval/postgres/pg_keywords.h"

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

TEST(PgKeywordsTest, QuotedLexemesWithPositions) {
  EXPECT_EQ(postgres::TsVector("熊猫 熊猫"), "'熊':1,4 '熊猫':2,5 '猫':3,6");
  EXPECT_EQ(postgres::TsVector("Tea, tea and TEA"), "'and':3 'tea':1,2,4");
  EXPECT_EQ(postgres::TsQuery("熊猫吃 tea tea"), "'tea' | '熊猫' | '猫吃'");
  EXPECT_EQ(postgres::TsQuery("!?"), "");
}

}  // namespace
}  // namespace lumen::retrieval
