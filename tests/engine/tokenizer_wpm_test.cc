// WordPiece normalization (issue 12, defect 3): combining marks never split or
// spoil a word. llama.cpp's WPM pre-tokenizer (b10573) decomposes each code
// point to the first of its canonical decomposition and drops every mark
// (Mn, Mc, Me) when strip_accents is on (the default, as lowercasing is); with
// strip_accents off the marks stay in the word, after their base character.

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

struct WpmVector {
  const char* text;
  std::vector<int32_t> ids;
};

// ggml-vocab-bert-bge.gguf has no normalizer keys: lowercase and strip
// accents. Each list was derived by hand from the vocabulary (marks dropped,
// then greedy longest match of "▁" + word, continuation pieces without "▁")
// and then confirmed with llama_tokenize of llama.cpp b10573.
const WpmVector kBgeVectors[] = {
    // ह ि न ् द ी: the vowel signs ि ी (Mc) and the virama ् (Mn) go; "▁हनद"
    // has no whole token, so ▁ह (1339) न (29863) द (29861).
    {"हिन्दी", {1339, 29863, 29861}},
    // Every word likewise; "," (1010) and "।" (▁। 1344) are punctuation words.
    {"नमस्ते दुनिया, यह एक परीक्षण है।",
     {1327, 29867, 29874, 29859, 1325, 29863, 29868, 1010, 1332, 29875, 1314,
      29851, 1328, 29869, 29851, 29873, 29858, 1339, 1344}},
    // Decomposed and precomposed accents give the same words: ▁cafe ▁naive
    // ▁resume.
    {"Cafe\u0301 nai\u0308ve re\u0301sume\u0301", {7668, 15743, 13746}},
    {"Café NAÏVE Résumé", {7668, 15743, 13746}},
    // Arabic harakat (Mn) go: ▁م ر ح ب ا.
    {"مَرْحَبًا", {1295, 17149, 29820, 29816, 25573}},
    // Hebrew niqqud (Mn) go: ▁ש ל ו ם.
    {"שָׁלוֹם", {1266, 29799, 29792, 29800}},
    // Enclosing marks (Me) go, and a mark with no base before it vanishes.
    {"a\u20dd b\u0489", {1037, 1038}},
    {"\u0301start", {2707}},
    // Letters the vocabulary lacks still give [UNK] for the word.
    {"ภาษาไทย", {100}},
};

TEST(WpmNormalizerTest, BgeMatchesLlamaCpp) {
  auto file =
      GgufFile::Open(testing::TestDataPath("vocab/ggml-vocab-bert-bge.gguf"));
  ASSERT_TRUE(file.ok()) << file.status();
  auto t = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE((*t)->vocab().lowercase);
  EXPECT_TRUE((*t)->vocab().strip_accents);
  for (const WpmVector& v : kBgeVectors) {
    EXPECT_EQ((*t)->Encode(v.text, false, false), v.ids) << v.text;
  }
}

// A small bert vocabulary with the given normalizer keys ("" = absent).
std::unique_ptr<Tokenizer> SyntheticWpm(const std::string& lowercase,
                                        const std::string& strip_accents) {
  const std::vector<std::string> tokens = {
      "[PAD]",
      "[UNK]",
      "[CLS]",
      "[SEP]",
      "\xe2\x96\x81हि",
      "न्",
      "दी",  // 4 5 6: pieces with their marks
      "\xe2\x96\x81ह",
      "न",
      "द",  // 7 8 9: bare letters
      "\xe2\x96\x81Hi",
      "\xe2\x96\x81hi"  // 10 11
  };
  std::vector<int32_t> types(tokens.size(),
                             static_cast<int32_t>(TokenType::kNormal));
  for (int i = 0; i < 4; ++i)
    types[i] = static_cast<int32_t>(TokenType::kControl);
  GgufWriter w;
  w.SetString("general.architecture", "bert");
  w.SetString("tokenizer.ggml.model", "bert");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  w.SetUint32("tokenizer.ggml.unknown_token_id", 1);
  w.SetUint32("tokenizer.ggml.bos_token_id", 2);
  w.SetUint32("tokenizer.ggml.seperator_token_id", 3);
  w.SetUint32("tokenizer.ggml.padding_token_id", 0);
  if (!lowercase.empty()) {
    w.SetBool("tokenizer.ggml.normalizer.lowercase", lowercase == "true");
  }
  if (!strip_accents.empty()) {
    w.SetBool("tokenizer.ggml.normalizer.strip_accents",
              strip_accents == "true");
  }
  const std::string dir = testing::MakeTempDir();
  const std::string path = dir + "/vocab.gguf";
  EXPECT_TRUE(w.Write(path).ok());
  auto file = GgufFile::Open(path);
  std::remove(path.c_str());
  rmdir(dir.c_str());
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto t = Tokenizer::FromGguf(**file);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

TEST(WpmNormalizerTest, MarksStayWithTheirBaseCharacterWithoutStripAccents) {
  auto keep = SyntheticWpm("false", "");  // strip_accents follows lowercase
  ASSERT_NE(keep, nullptr);
  EXPECT_FALSE(keep->vocab().strip_accents);
  EXPECT_EQ(keep->Encode("हिन्दी", false, false),
            (std::vector<int32_t>{4, 5, 6}));
  EXPECT_EQ(keep->Encode("Hi", false, false), (std::vector<int32_t>{10}));

  auto strip = SyntheticWpm("", "");  // both default to true
  ASSERT_NE(strip, nullptr);
  EXPECT_EQ(strip->Encode("हिन्दी", false, false),
            (std::vector<int32_t>{7, 8, 9}));
  EXPECT_EQ(strip->Encode("Hi", false, false), (std::vector<int32_t>{11}));

  // Lowercase without stripping accents.
  auto lower_only = SyntheticWpm("true", "false");
  ASSERT_NE(lower_only, nullptr);
  EXPECT_EQ(lower_only->Encode("हिन्दी Hi", true, false),
            (std::vector<int32_t>{2, 4, 5, 6, 11, 3}));
}

}  // namespace
}  // namespace lumen::engine
