#include <string>

#include "base/unicode.h"
#include "engine/tokenizer/regex.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/engine/test_tokenizer.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

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

TEST(TokenizerTest, SpmAddsBosAndParsesSpecialOnRequest) {
  auto t = testing::LoadTestTokenizer("models/stories260K.gguf");
  ASSERT_NE(t, nullptr);
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
  auto t = testing::LoadTestTokenizer("models/stories260K.gguf");
  ASSERT_NE(t, nullptr);
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

// Byte fallback (issue 12, defect 1). stories260K has 512 tokens: Chinese and
// emoji become one <0xXX> token per UTF-8 byte (ids 3 + byte, checked against
// llama_tokenize of llama.cpp b10573).
TEST(TokenizerTest, ByteFallbackPiecesAreRawBytesDisplayPiecesAreUtf8) {
  auto t = testing::LoadTestTokenizer("models/stories260K.gguf");
  ASSERT_NE(t, nullptr);
  const std::string text = "Lily 你好 😀!";
  const std::vector<int32_t> ids = t->Encode(text, false, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{317, 410, 231, 192, 163, 232, 168, 192,
                                       410, 243, 162, 155, 131, 443}));
  EXPECT_EQ(t->Decode(ids), text);
  // 你 = E4 BD A0: three tokens, none a character on its own.
  EXPECT_EQ(t->TokenToPiece(231), "\xe4");
  EXPECT_EQ(t->TokenToPiece(192), "\xbd");
  EXPECT_EQ(t->TokenToDisplayPiece(231), "<0xE4>");
  EXPECT_EQ(t->TokenToDisplayPiece(192), "<0xBD>");
  // Whole characters are shown as they are.
  EXPECT_EQ(t->TokenToDisplayPiece(317), t->TokenToPiece(317));
  std::string shown;
  for (int32_t id : ids) {
    const std::string piece = t->TokenToDisplayPiece(id);
    EXPECT_TRUE(IsValidUtf8(piece)) << id;
    shown += piece;
  }
  // The first piece keeps SPM's prefix space (Decode drops it).
  EXPECT_EQ(shown,
            " Lily <0xE4><0xBD><0xA0><0xE5><0xA5><0xBD> "
            "<0xF0><0x9F><0x98><0x80>!");
  // Streaming gives whole characters only: 你, 好 and 😀 each appear at once.
  StreamingDetokenizer detok(*t, /*at_text_start=*/true);
  std::vector<std::string> deltas;
  for (int32_t id : ids) {
    std::string d = detok.Push(id);
    EXPECT_TRUE(IsValidUtf8(d)) << id;
    if (!d.empty()) deltas.push_back(d);
  }
  EXPECT_EQ(detok.Flush(), "");
  EXPECT_EQ(deltas,
            (std::vector<std::string>{"Lily", " ", "你", "好", " ", "😀", "!"}));
}

TEST(TokenizerTest, StreamingDetokenizerReplacesBytesThatCannotBecomeText) {
  // A model may emit any byte token: a stray continuation byte, a character
  // cut short by another, an overlong form. The stream must stay valid UTF-8
  // (a proto string field rejects anything else).
  auto t = testing::LoadTestTokenizer("models/stories260K.gguf");
  ASSERT_NE(t, nullptr);
  auto byte = [](int b) { return 3 + b; };  // <0xXX> ids in this vocabulary
  const int32_t a = t->vocab().Find("a");
  ASSERT_GE(a, 0);
  const std::vector<int32_t> ids = {
      byte(0x80),                          // stray continuation
      a,                                   //
      byte(0xE4), byte(0xBD),              // 你 cut short ...
      a,                                   // ... by a letter
      byte(0xC0), byte(0xAF),              // overlong '/'
      byte(0xE4), byte(0xBD), byte(0xA0),  // 你
      byte(0xF0), byte(0x9F)};             // unfinished at the end
  StreamingDetokenizer detok(*t, /*at_text_start=*/false);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string d = detok.Push(id);
    EXPECT_TRUE(IsValidUtf8(d))
        << "after id " << id << ": " << ::testing::PrintToString(d);
    streamed += d;
  }
  const std::string tail = detok.Flush();
  EXPECT_TRUE(IsValidUtf8(tail));
  streamed += tail;
  EXPECT_EQ(streamed, "\uFFFDa\uFFFDa\uFFFD\uFFFD你\uFFFD");
}

TEST(TokenizerTest, DisplayPieceIsValidUtf8ForEveryTokenOfEveryVocab) {
  for (const char* name :
       {"models/stories260K.gguf", "vocab/ggml-vocab-llama-spm.gguf",
        "vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-deepseek-llm.gguf",
        "vocab/ggml-vocab-bert-bge.gguf"}) {
    auto t = testing::LoadTestTokenizer(name);
    ASSERT_NE(t, nullptr);
    int partial = 0;
    for (int32_t id = 0; id < t->vocab().size(); ++id) {
      for (bool special : {false, true}) {
        const std::string piece = t->TokenToPiece(id, special);
        const std::string shown = t->TokenToDisplayPiece(id, special);
        ASSERT_TRUE(IsValidUtf8(shown)) << name << " id " << id;
        if (IsValidUtf8(piece)) {
          ASSERT_EQ(shown, piece) << name << " id " << id;
        } else {
          ++partial;
        }
      }
    }
    // Byte-fallback and byte-level vocabularies do have partial pieces.
    if (t->vocab().type != VocabType::kWpm) {
      EXPECT_GT(partial, 0) << name;
    }
  }
}

TEST(TokenizerTest, BpeChineseRoundTripsPieceByPiece) {
  auto t = testing::LoadTestTokenizer("vocab/ggml-vocab-deepseek-llm.gguf");
  ASSERT_NE(t, nullptr);
  const std::string text = "我想在apple工作1314151天～ 你好，世界！";
  std::vector<int32_t> ids = t->Encode(text, false, false);
  StreamingDetokenizer detok(*t, /*at_text_start=*/true);
  std::string streamed;
  for (int32_t id : ids) streamed += detok.Push(id);
  streamed += detok.Flush();
  EXPECT_EQ(streamed, text);
}

TEST(TokenizerTest, BertAddsClsAndSep) {
  auto t = testing::LoadTestTokenizer("vocab/ggml-vocab-bert-bge.gguf");
  ASSERT_NE(t, nullptr);
  std::vector<int32_t> ids = t->Encode("hello world", true, false);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 101);
  EXPECT_EQ(ids.back(), 102);
}

TEST(TokenizerTest, ParseOnlyVocabsLoad) {
  for (const char* name :
       {"vocab/ggml-vocab-baichuan.gguf", "vocab/ggml-vocab-gpt-neox.gguf"}) {
    auto t = testing::LoadTestTokenizer(name);
    ASSERT_NE(t, nullptr) << name;
    std::vector<int32_t> ids = t->Encode("Hello world", false, false);
    EXPECT_FALSE(ids.empty()) << name;
    EXPECT_EQ(t->Decode(ids), "Hello world") << name;
  }
}

}  // namespace
}  // namespace lumen::engine
