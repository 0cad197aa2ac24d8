// Truncations and random byte mutations of a real GGUF file: the reader must
// return an error or a valid parse, never crash (this test also runs under
// ASan + UBSan). The libFuzzer target tests/fuzz/gguf_fuzzer.cc explores more.

#include <random>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

std::vector<uint8_t> Stories() {
  std::string s =
      testing::ReadFile(testing::TestDataPath("models/stories260K.gguf"));
  return std::vector<uint8_t>(s.begin(), s.end());
}

// Parses, and when that works, walks everything a loader would touch.
void Exercise(const std::vector<uint8_t>& bytes, int* ok_count) {
  auto f = GgufFile::Parse(bytes);
  if (!f.ok()) {
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(f.status().message().find("gguf:"), absl::string_view::npos)
        << f.status();
    return;
  }
  ++*ok_count;
  uint64_t sum = 0;
  for (const auto& t : (*f)->tensors()) {
    for (uint8_t b : (*f)->TensorData(t)) sum += b;
  }
  auto tok = Tokenizer::FromGguf(**f);
  if (tok.ok()) {
    std::vector<int32_t> ids =
        (*tok)->Encode("Once upon a time 你好", true, true);
    sum += (*tok)->Decode(ids).size();
  }
  // Reading every tensor byte is the point (ASan checks the bounds);
  // keep the sum observable so the reads are not optimized away.
  volatile uint64_t sink = sum;
  (void)sink;
}

TEST(GgufFuzzCorpusTest, TwoHundredTruncations) {
  const std::vector<uint8_t> good = Stories();
  ASSERT_GT(good.size(), 1000u);
  int ok = 0;
  for (int i = 0; i < 200; ++i) {
    // Dense near the header, spread over the whole file after that.
    const size_t len = i < 100 ? i * 97 % 20000 : good.size() * (i - 100) / 100;
    std::vector<uint8_t> cut(good.begin(), good.begin() + len);
    Exercise(cut, &ok);
  }
  EXPECT_EQ(ok, 0) << "a truncated file parsed as valid";
}

TEST(GgufFuzzCorpusTest, TwoThousandMutations) {
  const std::vector<uint8_t> good = Stories();
  std::mt19937_64 rng(1234);
  int ok = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> m = good;
    const int flips = 1 + rng() % 8;
    for (int k = 0; k < flips; ++k) {
      // Most mutations land in the header, where structure lives.
      const size_t header = 24 * 1024;
      const size_t at = (rng() % 4 != 0) ? rng() % header : rng() % m.size();
      m[at] = static_cast<uint8_t>(rng());
    }
    Exercise(m, &ok);
  }
  // Many mutations hit values (scores, tensor data) and still parse.
  EXPECT_GT(ok, 0);
  EXPECT_LT(ok, 2000);
}

}  // namespace
}  // namespace lumen::engine
