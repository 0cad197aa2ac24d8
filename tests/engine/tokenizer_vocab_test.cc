// llama.cpp's tokenizer test vectors: every *.gguf.inp string must encode to
// exactly the ids of *.gguf.out (add_special = false, parse_special = false)
// and, for lossless tokenizers, decode back to the input.

#include <dirent.h>

#include <algorithm>
#include <sstream>

#include "absl/strings/str_split.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

std::vector<std::string> VocabsWithVectors() {
  std::vector<std::string> names;
  const std::string dir = testing::TestDataPath("vocab");
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      const std::string suffix = ".gguf.inp";
      if (name.size() > suffix.size() && name.ends_with(suffix)) {
        names.push_back(name.substr(0, name.size() - suffix.size()));
      }
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

class VocabVectorsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabVectorsTest, EncodesExactlyAndRoundTrips) {
  const std::string base = testing::TestDataPath("vocab/" + GetParam());
  auto file = GgufFile::Open(base + ".gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  auto tokenizer = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();

  std::vector<std::string> inputs = absl::StrSplit(
      testing::ReadFile(base + ".gguf.inp"), "\n__ggml_vocab_test__\n");
  ASSERT_FALSE(inputs.empty());
  ASSERT_EQ(inputs.back(), "");
  inputs.pop_back();
  std::vector<std::string> lines =
      absl::StrSplit(testing::ReadFile(base + ".gguf.out"), '\n');
  ASSERT_GE(lines.size(), inputs.size());
  ASSERT_EQ(inputs.size(), 46u);

  // WordPiece lowercases and drops accents: it cannot round-trip.
  const bool lossless = (*tokenizer)->vocab().type != VocabType::kWpm;
  int exact = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<int32_t> want;
    for (absl::string_view tok :
         absl::StrSplit(lines[i], ' ', absl::SkipEmpty())) {
      want.push_back(std::stoi(std::string(tok)));
    }
    const std::vector<int32_t> got =
        (*tokenizer)
            ->Encode(inputs[i], /*add_special=*/false,
                     /*parse_special=*/false);
    EXPECT_EQ(got, want) << GetParam() << " string #" << i << ": '" << inputs[i]
                         << "'";
    exact += got == want;
    if (lossless) {
      EXPECT_EQ((*tokenizer)->Decode(got), inputs[i])
          << GetParam() << " string #" << i;
    }
  }
  EXPECT_EQ(exact, 46);
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, VocabVectorsTest,
                         ::testing::ValuesIn(VocabsWithVectors()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           std::replace_if(
                               n.begin(), n.end(),
                               [](char c) { return !isalnum(c); }, '_');
                           return n;
                         });

TEST(VocabVectorsTest, AllTenVocabsArePresent) {
  EXPECT_EQ(VocabsWithVectors().size(), 10u);
}

}  // namespace
}  // namespace lumen::engine
