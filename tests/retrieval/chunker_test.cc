#include "retrieval/chunker.h"

#include <string>

#include "base/unicode.h"
#include "gtest/gtest.h"

namespace lumen::retrieval {
namespace {

TEST(ChunkerTest, EnglishBreaksAtSentenceEndsWithOverlap) {
  std::string text;
  for (int i = 0; i < 30; ++i)
    text += "Sentence number " + std::to_string(i) + " is here. ";
  ChunkerOptions o{20, 8};
  auto chunks = ChunkText(text, o, EstimateTokens);
  ASSERT_GT(chunks.size(), 3u);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    EXPECT_LE(EstimateTokens(c.text), 20) << c.text;
    EXPECT_EQ(c.text, text.substr(c.start, c.end - c.start));
    EXPECT_EQ(c.text.rfind("Sentence", 0), 0u)
        << "starts at a sentence: " << c.text;
    if (i + 1 < chunks.size()) {
      EXPECT_LT(chunks[i + 1].start, c.end) << "consecutive chunks overlap";
    }
  }
  EXPECT_EQ(chunks.back().end, static_cast<int64_t>(text.size()));
}

TEST(ChunkerTest, ChineseBreaksAtChinesePunctuationNeverInsideACharacter) {
  std::string text;
  for (int i = 0; i < 20; ++i)
    text += "小猫在花园里玩耍。它很开心！你喜欢吗？我们走吧；";
  ChunkerOptions o{30, 6};
  auto chunks = ChunkText(text, o, EstimateTokens);
  ASSERT_GT(chunks.size(), 2u);
  for (const Chunk& c : chunks) {
    EXPECT_EQ(IncompleteUtf8Suffix(c.text), 0u);
    for (uint32_t cp : DecodeUtf8(c.text)) EXPECT_NE(cp, 0xFFFDu);
    EXPECT_LE(EstimateTokens(c.text), 30);
    const std::string tail = c.text.substr(c.text.size() - 3);
    EXPECT_TRUE(tail == "。" || tail == "！" || tail == "？" || tail == "；")
        << c.text;
  }
  // A sentence longer than the budget is cut at character boundaries.
  std::string long_zh;
  for (int i = 0; i < 200; ++i) long_zh += "字";
  for (const Chunk& c : ChunkText(long_zh, o, EstimateTokens)) {
    EXPECT_EQ(IncompleteUtf8Suffix(c.text), 0u);
    EXPECT_LE(EstimateTokens(c.text), 30);
  }
}

}  // namespace
}  // namespace lumen::retrieval
