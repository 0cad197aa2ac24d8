#include <string>

#include "base/unicode.h"
#include "engine/tokenizer/regex.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

std::unique_ptr<Tokenizer> Load(const std::string& relative) {
  auto file = GgufFile::Open(testing::TestDataPath(relative));
  EXPECT_TRUE(file.ok()) << file.status();
  auto t = Tokenizer::FromGguf(**file);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

TEST(RegexTest, LeftmostFirstWithLookahead) {
  auto re = Regex::Compile("\\s+(?!\\S)|\\s+|a+");
  ASSERT_TRUE(re.ok()) << re.status();
  std::vector<uint32_t> text = DecodeUtf8("   aa");
  // "\s+(?!\S)" backs off one space so the last space can join the word.
  EXPECT_EQ(re->MatchAt(text.data(), 0, text.size()), 2);
  EXPECT_EQ(re->MatchAt(text.data(), 3, text.size()), 2);
}

TEST(RegexTest, CountedRepeatAndClasses) {
  auto re = Regex::Compile("\\p{N}{1,3}");
  ASSERT_TRUE(re.ok());
  std::vector<uint32_t> text = DecodeUtf8("12345");
  std::vector<int> ends;
  re->Split(text.data(), 0, text.size(), &ends);
  EXPECT_EQ(ends, (std::vector<int>{3, 5}));
}

TEST(RegexTest, RejectsUnsupportedSyntax) {
  EXPECT_THAT(Regex::Compile("(?<=a)b"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("group")));
  EXPECT_THAT(
      Regex::Compile("[abc"),
      StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("]")));
}

TEST(Utf8Test, IncompleteSuffix) {
  const std::string zh = "\xe4\xbd\xa0";  // 你
  EXPECT_EQ(IncompleteUtf8Suffix(zh), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix(zh.substr(0, 2)), 2u);
  EXPECT_EQ(IncompleteUtf8Suffix("a" + zh.substr(0, 1)), 1u);
  EXPECT_EQ(IncompleteUtf8Suffix("abc"), 0u);
}

TEST(TokenizerTest, SpmAddsBosAndParsesSpecialOnRequest) {
  auto t = Load("models/stories260K.gguf");
  EXPECT_EQ(t->vocab().type, VocabType::kSpm);
  std::vector<int32_t> ids = t->Encode("Once upon a time", true, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(t->Decode(std::span(ids).subspan(1)), "Once upon a time");
  // "</s>" is a control token: literal text unless parse_special.
  std::vector<int32_t> literal = t->Encode("a</s>", false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 2), 0);
  std::vector<int32_t> parsed = t->Encode("a</s>", false, true);
  ASSERT_FALSE(parsed.empty());
  EXPECT_EQ(parsed.back(), 2);
}

TEST(TokenizerTest, StreamingDetokenizerNeverSplitsUtf8) {
  // stories260K has only 512 tokens: Chinese falls back to single bytes,
  // so every character spans three tokens.
  auto t = Load("models/stories260K.gguf");
  const std::string text = "小猫在花园里玩。Lily smiled.";
  std::vector<int32_t> ids = t->Encode(text, false, false);
  StreamingDetokenizer detok(*t, /*at_text_start=*/true);
  std::string streamed;
  for (int32_t id : ids) {
    std::string piece = detok.Push(id);
    EXPECT_EQ(IncompleteUtf8Suffix(piece), 0u);
    for (uint32_t cp : DecodeUtf8(piece)) EXPECT_NE(cp, 0xFFFDu);
    streamed += piece;
  }
  streamed += detok.Flush();
  EXPECT_EQ(streamed, text);
}

TEST(TokenizerTest, BpeChineseRoundTripsPieceByPiece) {
  auto t = Load("vocab/ggml-vocab-deepseek-llm.gguf");
  const std::string text = "我想在apple工作1314151天～ 你好，世界！";
  std::vector<int32_t> ids = t->Encode(text, false, false);
  StreamingDetokenizer detok(*t, /*at_text_start=*/true);
  std::string streamed;
  for (int32_t id : ids) streamed += detok.Push(id);
  streamed += detok.Flush();
  EXPECT_EQ(streamed, text);
}

TEST(TokenizerTest, BertAddsClsAndSep) {
  auto t = Load("vocab/ggml-vocab-bert-bge.gguf");
  std::vector<int32_t> ids = t->Encode("hello world", true, false);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 101);
  EXPECT_EQ(ids.back(), 102);
}

TEST(TokenizerTest, ParseOnlyVocabsLoad) {
  for (const char* name :
       {"vocab/ggml-vocab-baichuan.gguf", "vocab/ggml-vocab-gpt-neox.gguf"}) {
    auto t = Load(name);
    ASSERT_NE(t, nullptr) << name;
    std::vector<int32_t> ids = t->Encode("Hello world", false, false);
    EXPECT_FALSE(ids.empty()) << name;
    EXPECT_EQ(t->Decode(ids), "Hello world") << name;
  }
}

}  // namespace
}  // namespace lumen::engine
