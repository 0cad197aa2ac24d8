// Special-token injection (issue 12, defect 2). User text must never become
// a control token unless parse_special is on. Three checks:
//  - llama.cpp's own ids (b10573, through libllama's llama_tokenize) for
//    marker-laden strings on every test vocabulary, in both parse modes;
//  - on every vocabulary, each control/unknown token and each token llama.cpp
//    treats as control though the file calls it user-defined, alone and
//    embedded in text: plain text without parse_special, its id with it;
//  - synthetic vocabularies for the rules no test file exercises.

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/engine/test_tokenizer.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

// ---- llama.cpp's ids ----

struct LlamaCppVector {
  const char* vocab;
  const char* text;
  std::vector<int32_t> plain;    // parse_special = false
  std::vector<int32_t> special;  // parse_special = true
};

// Produced by llama_tokenize(add_special=false) of llama.cpp b10573 on the
// same files. The string first; then each vocabulary's own markers.
// Worth noting: phi-3's "</s>" (user-defined in the file) is plain text
// without parse_special, as deepseek-coder's FIM markers are; phi-3's special
// tokens eat the whitespace after them (llama.cpp's RSTRIP for phi-3), hence
// "\n" vanishing after <|user|>; deepseek-coder's "<|EOT|>" is user-defined and
// not control-looking, so llama.cpp (and we) match it in any text.
const LlamaCppVector kLlamaCppVectors[] = {
    {"models/stories260K.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {410, 504, 419, 505, 410, 504, 492, 419, 505, 410, 508, 442, 458, 437, 434,
      509, 297, 309, 262, 427, 411, 429, 417, 412, 421, 410, 508, 492, 442, 458,
      437, 434, 509, 410, 504, 506, 288, 98,  356, 295, 413, 506, 505},
     {1,   410, 410, 2,   410, 410, 508, 442, 458, 437, 434, 509, 297,
      309, 262, 427, 411, 429, 417, 412, 421, 410, 508, 492, 442, 458,
      437, 434, 509, 410, 504, 506, 288, 98,  356, 295, 413, 506, 505}},
    {"models/stories260K.gguf",
     "<unk><s>x</s> y",
     {410, 504, 379, 433, 505, 504, 419, 505, 444, 504, 492, 419, 505, 348},
     {0, 1, 410, 444, 2, 410, 348}},
    {"vocab/ggml-vocab-baichuan.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {1557,  31114, 31219, 4600, 31114, 31219, 1633,  1776,
      2672,  31295, 840,   1982, 1633,  31159, 1776,  2672,
      31295, 1557,  31282, 724,  31193, 10647, 31282, 31219},
     {1,     31106, 31106, 2,     31106, 1633,  1776, 2672,
      31295, 840,   1982,  1633,  31159, 1776,  2672, 31295,
      1557,  31282, 724,   31193, 10647, 31282, 31219}},
    {"vocab/ggml-vocab-baichuan.gguf",
     "<unk><s>x</s> y",
     {1557, 3939, 13535, 31114, 31219, 31141, 2154, 31114, 31219, 721},
     {0, 1, 2759, 2, 31106, 721}},
    {"vocab/ggml-vocab-bert-bge.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {1026, 1055, 1028,  1026, 1013, 1055, 1028,  1031, 16021,
      2102, 1033, 2025,  2569, 1031, 1013, 16021, 2102, 1033,
      1026, 1064, 10047, 1035, 2707, 1064, 1028},
     {1026, 1055, 1028,  1026, 1013, 1055, 1028,  1031, 16021,
      2102, 1033, 2025,  2569, 1031, 1013, 16021, 2102, 1033,
      1026, 1064, 10047, 1035, 2707, 1064, 1028}},
    {"vocab/ggml-vocab-bert-bge.gguf",
     "[CLS] hello [SEP] [MASK] [UNK] [PAD]",
     {1031, 18856, 2015, 1033, 7592, 1031, 19802, 1033, 1031, 7308, 1033, 1031,
      4895, 2243, 1033, 1031, 11687, 1033},
     {101, 7592, 102, 103, 100, 0}},
    {"vocab/ggml-vocab-deepseek-coder.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {27,  82, 7159,  14, 82,   29, 821, 24607, 60,   441, 3028,
      821, 14, 24607, 60, 1013, 91, 308, 62,    4779, 91,  29},
     {27,  82, 7159,  14, 82,   29, 821, 24607, 60,   441, 3028,
      821, 14, 24607, 60, 1013, 91, 308, 62,    4779, 91,  29}},
    {"vocab/ggml-vocab-deepseek-coder.gguf",
     "<｜fim▁begin｜>def f(x):\n    <｜fim▁hole｜>\n<｜fim▁end｜><|EOT|>",
     {27,  169,   121, 237,   69,  308,  11028, 210, 946, 169, 121,  237,
      29,  1551,  267, 7,     87,  1772, 185,   874, 169, 121, 237,  69,
      308, 11028, 210, 19496, 169, 121,  237,   29,  185, 27,  169,  121,
      237, 69,    308, 11028, 210, 408,  169,   121, 237, 29,  32021},
     {32016, 1551, 267, 7, 87, 1772, 185, 251, 32015, 185, 32017, 32021}},
    {"vocab/ggml-vocab-deepseek-llm.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {27,   82,    29,    1119, 82,  29, 825, 24499, 60,   441,
      3038, 91706, 24499, 60,   459, 91, 309, 62,    4789, 66325},
     {27,   82,    29,    1119, 82,  29, 825, 24499, 60,   441,
      3038, 91706, 24499, 60,   459, 91, 309, 62,    4789, 66325}},
    {"vocab/ggml-vocab-deepseek-llm.gguf",
     "<｜begin▁of▁sentence｜>Hi<｜end▁of▁sentence｜>",
     {27,    68940, 237, 951,   11009, 210,   994,   11009, 210,
      53582, 68940, 237, 29,    11007, 27,    68940, 237,   409,
      11009, 210,   994, 11009, 210,   53582, 68940, 237,   29},
     {100000, 11007, 100001}},
    {"vocab/ggml-vocab-falcon.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {39,   94,  41,    204,   1686, 94,  41, 204, 70,  35098, 72,   416,
      1733, 204, 10355, 35098, 72,   204, 39, 103, 306, 74,    7748, 54146},
     {39,   94,  41,    204,   1686, 94,  41, 204, 70,  35098, 72,   416,
      1733, 204, 10355, 35098, 72,   204, 39, 103, 306, 74,    7748, 54146}},
    {"vocab/ggml-vocab-falcon.gguf",
     ">>QUESTION<<What?>>ANSWER<<<|endoftext|>",
     {500, 30029, 503, 1562, 42, 500, 20842, 503, 39, 103, 415, 1487, 2164,
      54146},
     {6, 1562, 42, 5, 11}},
    {"vocab/ggml-vocab-gpt-2.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {27,    82,    29, 7359, 82, 29,  685, 38604, 60, 407, 2041,
      46581, 38604, 60, 1279, 91, 320, 62,  9688,  91, 29},
     {27,    82,    29, 7359, 82, 29,  685, 38604, 60, 407, 2041,
      46581, 38604, 60, 1279, 91, 320, 62,  9688,  91, 29}},
    {"vocab/ggml-vocab-gpt-2.gguf",
     "a<|endoftext|>b",
     {64, 27, 91, 437, 1659, 5239, 91, 29, 65},
     {64, 50256, 65}},
    {"vocab/ggml-vocab-gpt-neox.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {29,   84,  31,    209,   870, 84,  31, 209, 60,  23486, 62,   417,
      2714, 209, 32871, 23486, 62,  209, 29, 93,  303, 64,    5478, 49651},
     {29,   84,  31,    209,   870, 84,  31, 209, 60,  23486, 62,   417,
      2714, 209, 32871, 23486, 62,  209, 29, 93,  303, 64,    5478, 49651}},
    {"vocab/ggml-vocab-gpt-neox.gguf",
     "a<|endoftext|>b<|padding|>",
     {66, 29, 93, 423, 1171, 1156, 49651, 67, 29, 93, 17333, 49651},
     {66, 0, 67, 1}},
    {"vocab/ggml-vocab-llama-spm.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {529, 29879, 29958, 1533,  29879, 29958, 518, 25580, 29962, 451,   4266,
      518, 29914, 25580, 29962, 529,   29989, 326, 29918, 2962,  29989, 29958},
     {1,     259,   2,     29871, 518,   25580, 29962, 451,  4266,  518,
      29914, 25580, 29962, 529,   29989, 326,   29918, 2962, 29989, 29958}},
    {"vocab/ggml-vocab-llama-spm.gguf",
     "<unk><s>x</s> y",
     {529, 2960, 5299, 29879, 29958, 29916, 829, 29879, 29958, 343},
     {0, 1, 921, 2, 29871, 343}},
    {"vocab/ggml-vocab-mpt.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {29,  84, 31,    2033, 84,  31, 544, 23486, 62,   417,  2714,
      544, 16, 23486, 62,   654, 93, 303, 64,    5478, 49651},
     {29,  84, 31,    2033, 84,  31, 544, 23486, 62,   417,  2714,
      544, 16, 23486, 62,   654, 93, 303, 64,    5478, 49651}},
    {"vocab/ggml-vocab-mpt.gguf",
     "a<|endoftext|>b<|padding|>",
     {66, 29, 93, 423, 1171, 1156, 49651, 67, 29, 93, 17333, 49651},
     {66, 0, 67, 1}},
    {"vocab/ggml-vocab-phi-3.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {529, 29879, 29958, 1533,  29879, 29958, 518, 25580, 29962, 451,   4266,
      518, 29914, 25580, 29962, 529,   29989, 326, 29918, 2962,  29989, 29958},
     {1, 259, 2, 518, 25580, 29962, 451, 4266, 518, 29914, 25580, 29962, 529,
      29989, 326, 29918, 2962, 29989, 29958}},
    {"vocab/ggml-vocab-phi-3.gguf",
     "<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4</s>",
     {529,   29989, 1792,  29989, 29958, 13,  5618,  338,   29871, 29906,
      29974, 29906, 29973, 29966, 29989, 355, 29989, 29958, 13,    29966,
      29989, 465,   22137, 29989, 29958, 13,  29946, 829,   29879, 29958},
     {32010, 1724, 338, 29871, 29906, 29974, 29906, 29973, 32007, 32001, 29871,
      29946, 2}},
    {"vocab/ggml-vocab-refact.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {46, 101, 48, 576, 101, 48, 428, 6585, 79, 646, 7456, 29035, 6585, 79,
      39692, 449, 81, 1366, 28318},
     {46, 101, 48, 576, 101, 48, 428, 6585, 79, 646, 7456, 29035, 6585, 79,
      39692, 449, 81, 1366, 28318}},
    {"vocab/ggml-vocab-refact.gguf",
     "<fim_prefix>x<fim_suffix>y<fim_middle><|endoftext|>",
     {46, 88,  449, 81, 4254, 48, 106,   46,  88,  449,   81,    12420,
      48, 107, 46,  88, 449,  81, 10511, 772, 110, 15498, 31169, 28318},
     {1, 106, 3, 107, 2, 0}},
    {"vocab/ggml-vocab-starcoder.gguf",
     "<s> </s> [INST] not special [/INST] <|im_start|>",
     {65, 120, 67, 594, 120, 67, 447, 6587, 98, 666, 7472, 29018, 6587, 98,
      39647, 468, 100, 1384, 28339},
     {65, 120, 67, 594, 120, 67, 447, 6587, 98, 666, 7472, 29018, 6587, 98,
      39647, 468, 100, 1384, 28339}},
    {"vocab/ggml-vocab-starcoder.gguf",
     "<fim_prefix>x<fim_suffix>y<fim_middle><|endoftext|>",
     {65, 107, 468, 100, 4271, 67,  125,   65,  107, 468,   100,   12440,
      67, 126, 65,  107, 468,  100, 10519, 789, 129, 15546, 31124, 28339},
     {1, 125, 3, 126, 2, 0}},
};

void PrintTo(const LlamaCppVector& v, std::ostream* os) {
  *os << v.vocab << ": '" << v.text << "'";
}

class LlamaCppSpecialVectorsTest
    : public ::testing::TestWithParam<LlamaCppVector> {};

TEST_P(LlamaCppSpecialVectorsTest, MatchesLlamaCpp) {
  const LlamaCppVector& v = GetParam();
  auto t = testing::LoadTestTokenizer(v.vocab);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->Encode(v.text, false, /*parse_special=*/false), v.plain)
      << v.vocab << ": '" << v.text << "'";
  EXPECT_EQ(t->Encode(v.text, false, /*parse_special=*/true), v.special)
      << v.vocab << ": '" << v.text << "'";
}

INSTANTIATE_TEST_SUITE_P(
    AllVocabs, LlamaCppSpecialVectorsTest,
    ::testing::ValuesIn(kLlamaCppVectors),
    [](const ::testing::TestParamInfo<LlamaCppVector>& info) {
      std::string n = info.param.vocab;
      n = n.substr(n.find('/') + 1);
      std::replace_if(
          n.begin(), n.end(), [](char c) { return !isalnum(c); }, '_');
      return n + "_" + std::to_string(info.index);
    });

// ---- Every control token of every vocabulary ----

// Tokens llama.cpp makes control although the file declares them user-defined
// (found by comparing every control, unknown and user-defined token of every
// test vocabulary with llama.cpp b10573; these are all of them).
struct Override {
  const char* vocab;
  const char* text;
};
const Override kLlamaCppControlOverrides[] = {
    {"vocab/ggml-vocab-phi-3.gguf", "</s>"},
    {"vocab/ggml-vocab-deepseek-coder.gguf", "<｜fim▁begin｜>"},
    {"vocab/ggml-vocab-deepseek-coder.gguf", "<｜fim▁hole｜>"},
    {"vocab/ggml-vocab-deepseek-coder.gguf", "<｜fim▁end｜>"},
};

std::vector<std::string> AllVocabFiles() {
  std::vector<std::string> names = {"models/stories260K.gguf"};
  const std::string dir = testing::TestDataPath("vocab");
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.ends_with(".gguf")) names.push_back("vocab/" + name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

class ControlTokenInjectionTest : public ::testing::TestWithParam<std::string> {
};

TEST_P(ControlTokenInjectionTest, ControlTokensNeverComeFromPlainText) {
  // The protected set comes from the file itself (not from the Vocab under
  // test) plus the overrides above.
  auto file = GgufFile::Open(testing::TestDataPath(GetParam()));
  ASSERT_TRUE(file.ok()) << file.status();
  auto texts =
      (*file)->GetArray("tokenizer.ggml.tokens", GgufValueType::kString);
  ASSERT_TRUE(texts.ok());
  std::set<int32_t> protected_ids;
  if (const GgufValue* types = (*file)->Find("tokenizer.ggml.token_type")) {
    for (size_t i = 0; i < types->elems.size(); ++i) {
      const int64_t type = types->elems[i].i64;
      if (type == static_cast<int64_t>(TokenType::kControl) ||
          type == static_cast<int64_t>(TokenType::kUnknown)) {
        protected_ids.insert(static_cast<int32_t>(i));
      }
    }
  }
  auto tokenizer = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const Tokenizer& t = **tokenizer;
  for (const Override& o : kLlamaCppControlOverrides) {
    if (GetParam() != o.vocab) continue;
    const int32_t id = t.vocab().Find(o.text);
    ASSERT_GE(id, 0) << o.text;
    // The file's own type is the fault being corrected.
    ASSERT_EQ((*file)->Find("tokenizer.ggml.token_type")->elems[id].i64,
              static_cast<int64_t>(TokenType::kUserDefined))
        << o.text;
    protected_ids.insert(id);
  }
  ASSERT_FALSE(protected_ids.empty());

  // WordPiece lowercases and drops accents: it cannot round-trip.
  const bool lossless = t.vocab().type != VocabType::kWpm;
  const std::pair<std::string, std::string> contexts[] = {
      {"", ""}, {"a", "b"}, {"Hello ", " world"}, {" ", "\n x"}};
  int checked = 0;
  for (int32_t id : protected_ids) {
    const std::string text(texts.value()->elems[id].str);
    if (text.empty()) continue;
    for (const auto& [before, after] : contexts) {
      const std::string input = before + text + after;
      const std::vector<int32_t> plain = t.Encode(input, false, false);
      for (int32_t got : plain) {
        EXPECT_EQ(protected_ids.count(got), 0u)
            << GetParam() << ": '" << input << "' gave control id " << got;
      }
      if (lossless) {
        EXPECT_EQ(t.Decode(plain), input)
            << GetParam() << ": '" << input << "' is not plain text any more";
      }
      const std::vector<int32_t> special = t.Encode(input, false, true);
      EXPECT_EQ(std::count(special.begin(), special.end(), id), 1)
          << GetParam() << ": '" << input << "' with parse_special";
      if (before.empty() && after.empty()) {
        EXPECT_EQ(special, std::vector<int32_t>{id})
            << GetParam() << ": " << text;
      }
      ++checked;
    }
    // Twice in a row: two ids, not one merged token.
    const std::vector<int32_t> twice = t.Encode(text + text, false, true);
    EXPECT_EQ(twice, (std::vector<int32_t>{id, id}))
        << GetParam() << ": " << text;
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, ControlTokenInjectionTest,
                         ::testing::ValuesIn(AllVocabFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           std::replace_if(
                               n.begin(), n.end(),
                               [](char c) { return !isalnum(c); }, '_');
                           return n;
                         });

TEST(ControlTokenInjectionTest, EveryTestVocabularyIsCovered) {
  // The 12 GGUF vocabularies in vocab/ and stories260K.
  EXPECT_EQ(AllVocabFiles().size(), 13u);
}

// ---- Synthetic vocabularies for the remaining rules ----

// A small SPM vocabulary: <unk> <s> </s>, the tokens in `extra` (text, type),
// the 256 byte tokens and "▁", "a", "b". Written to a temporary file, opened
// (the mapping outlives the file) and removed.
std::unique_ptr<Tokenizer> SyntheticSpm(
    const std::vector<std::pair<std::string, TokenType>>& extra,
    const std::vector<std::pair<std::string, int32_t>>& int_keys,
    const std::vector<std::pair<std::string, std::string>>& string_keys) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (const auto& [text, type] : extra) {
    tokens.push_back(text);
    types.push_back(static_cast<int32_t>(type));
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    tokens.push_back(name);
    types.push_back(static_cast<int32_t>(TokenType::kByte));
  }
  for (const char* text : {"\xe2\x96\x81", "a", "b"}) {
    tokens.push_back(text);
    types.push_back(static_cast<int32_t>(TokenType::kNormal));
  }
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetFloat32Array("tokenizer.ggml.scores",
                    std::vector<float>(tokens.size(), 0.0f));
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  for (const auto& [key, value] : int_keys) w.SetUint32(key, value);
  for (const auto& [key, value] : string_keys) w.SetString(key, value);
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

TEST(SpecialTokenRulesTest, DesignatedAndControlLookingUserTokensAreControl) {
  // Ids 3, 4, 5: a user-defined end-of-turn token the file names as eot, a
  // user-defined token with a control-looking spelling, and an ordinary
  // user-defined token.
  auto t = SyntheticSpm({{"<|eot|>", TokenType::kUserDefined},
                         {"<|im_end|>", TokenType::kUserDefined},
                         {"<|tool|>", TokenType::kUserDefined}},
                        {{"tokenizer.ggml.eot_token_id", 3}}, {});
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab().types[3], TokenType::kControl);
  EXPECT_EQ(t->vocab().types[4], TokenType::kControl);
  EXPECT_EQ(t->vocab().types[5], TokenType::kUserDefined);
  const std::string text = "a<|eot|>b<|im_end|>a<|tool|>";
  const std::vector<int32_t> plain = t->Encode(text, false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 3), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 4), 0);
  // User-defined tokens are matched in any text, as in llama.cpp.
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 5), 1);
  EXPECT_EQ(t->Decode(plain), text);
  const std::vector<int32_t> special = t->Encode(text, false, true);
  EXPECT_EQ(std::count(special.begin(), special.end(), 3), 1);
  EXPECT_EQ(std::count(special.begin(), special.end(), 4), 1);
  // Control tokens render only on request.
  EXPECT_EQ(t->TokenToPiece(3), "");
  EXPECT_EQ(t->TokenToPiece(3, /*render_special=*/true), "<|eot|>");
}

TEST(SpecialTokenRulesTest, MaskTokenEatsWhitespaceBeforeItForJinaV3) {
  const std::vector<std::pair<std::string, TokenType>> mask = {
      {"<mask>", TokenType::kControl}};
  auto jina =
      SyntheticSpm(mask, {}, {{"general.architecture", "jina-bert-v3"}});
  auto plain_llama = SyntheticSpm(mask, {}, {});
  ASSERT_NE(jina, nullptr);
  ASSERT_NE(plain_llama, nullptr);
  const int32_t a = jina->vocab().Find("a");
  const int32_t space = jina->vocab().Find("\xe2\x96\x81");
  // "▁a" is not a token: the prefix space and "a" stay apart.
  EXPECT_EQ(jina->Encode("a <mask>", false, true),
            (std::vector<int32_t>{space, a, 3}));
  EXPECT_EQ(plain_llama->Encode("a <mask>", false, true),
            (std::vector<int32_t>{space, a, space, 3}));
}

}  // namespace
}  // namespace lumen::engine
