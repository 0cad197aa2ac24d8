// The fp32 kernel crossovers kept per machine (kernels::KernelChoiceCache):
// the file round-trips, other machines' and broken lines never apply, a
// file that cannot be written is named, and a model's second load reads
// the choice its first load timed.

#include "engine/kernels/kernel_choice_cache.h"

#include <omp.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/model/transformer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/model_runner.h"
#include "tests/test_support.h"

namespace lumen::engine::kernels {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(KernelChoiceCacheTest, SavedCrossoversComeBackForTheSameMachineOnly) {
  const std::string path = testing::MakeTempDir() + "/sub/kernel-choice.txt";
  {
    auto cache = KernelChoiceCache::Open(path, 2);
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_FALSE((*cache)->Find("n=8;k=4").has_value());
    (*cache)->Put("n=8;k=4", 3);
    (*cache)->Put("n=16;k=4", 0);
    ASSERT_TRUE((*cache)->Save().ok());  // creates sub/
    EXPECT_EQ((*cache)->misses(), 1);
  }
  auto again = KernelChoiceCache::Open(path, 2);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->Find("n=8;k=4"), 3);
  EXPECT_EQ((*again)->Find("n=16;k=4"), 0);
  EXPECT_FALSE((*again)->Find("n=8;k=8").has_value());
  EXPECT_EQ((*again)->hits(), 2);
  EXPECT_EQ((*again)->misses(), 1);
  // Another team size is another machine as far as timings go.
  auto other = KernelChoiceCache::Open(path, 4);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE((*other)->Find("n=8;k=4").has_value());
  EXPECT_THAT((*again)->machine(), HasSubstr(";threads=2;"));
  EXPECT_THAT((*again)->machine(), HasSubstr(";isa="));
  EXPECT_THAT((*again)->machine(), HasSubstr(";wait="));
  EXPECT_THAT((*again)->machine(), HasSubstr(";dnnl="));
  EXPECT_THAT((*again)->machine(), HasSubstr(";build="));
}

TEST(KernelChoiceCacheTest, BrokenLinesAreDroppedNotTrusted) {
  const std::string path = testing::MakeTempDir() + "/kernel-choice.txt";
  std::string machine;
  {
    auto cache = KernelChoiceCache::Open(path, 2);
    ASSERT_TRUE(cache.ok());
    machine = (*cache)->machine();
  }
  {
    std::ofstream out(path);
    out << machine << ";n=8;k=4 -> 5\n"
        << machine << ";n=9;k=4 -> many\n"
        << machine << ";n=10;k=4 -> -1\n"
        << "no separator at all\n"
        << " -> 7\n";
  }
  auto cache = KernelChoiceCache::Open(path, 2);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ((*cache)->Find("n=8;k=4"), 5);
  EXPECT_FALSE((*cache)->Find("n=9;k=4").has_value());
  EXPECT_FALSE((*cache)->Find("n=10;k=4").has_value());
  ASSERT_TRUE((*cache)->Save().ok());  // rewritten without them
  EXPECT_EQ(testing::ReadFile(path), machine + ";n=8;k=4 -> 5\n");
}

TEST(KernelChoiceCacheTest, AFileThatCannotBeWrittenIsNamed) {
  const std::string dir = testing::MakeTempDir();
  { std::ofstream(dir + "/plain") << "a file, not a directory"; }
  auto cache = KernelChoiceCache::Open(dir + "/plain/kernel-choice.txt", 2);
  ASSERT_TRUE(cache.ok()) << cache.status();
  (*cache)->Put("n=8;k=4", 1);
  const absl::Status saved = (*cache)->Save();
  EXPECT_EQ(saved.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(saved.message(), HasSubstr(dir + "/plain"));
}

// stories260K loaded with fp32 weights, its kernel choices kept in `path`.
TransformerOptions Fp32WithChoiceFile(const std::string& path) {
  TransformerOptions options;
  options.weights = WeightMode::kF32;
  options.max_batch_tokens = 64;
  options.kernel_choice_file = path;
  return options;
}

// fp32 matrices choose between the small-M kernel and oneDNN only where
// they stay row-major: the AVX2 kernels (on AVX-512 they become panels, with
// one kernel for every M).
TEST(KernelChoiceCacheTest, SecondLoadOfAModelReadsWhatTheFirstTimed) {
  ScopedSmallGemmIsa avx2(SmallGemmIsa::kAvx2);
  auto f = testing::OpenModel(testing::TestDataPath("models/stories260K.gguf"));
  const std::string dir = testing::MakeTempDir();
  const std::string path = dir + "/kernel-choice.txt";
  TransformerOptions options = Fp32WithChoiceFile(path);
  auto first = Transformer::Load(*f, options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT((*first)->kernel_choice_source(), StartsWith("timed "));
  EXPECT_THAT((*first)->kernel_choice_source(),
              ::testing::EndsWith("; saved to " + path));
  // Keyed by the team that timed the kernels: this thread's.
  const std::string saved = testing::ReadFile(path);
  EXPECT_THAT(saved,
              HasSubstr(absl::StrCat(";threads=", omp_get_max_threads(), ";")));
  auto second = Transformer::Load(*f, options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->kernel_choice_source(), "from " + path);
  EXPECT_EQ((*second)->KernelChoiceSummary(), (*first)->KernelChoiceSummary());
  EXPECT_EQ(testing::ReadFile(path), saved) << "nothing new to write";
  // A file that cannot be opened (its parent is a regular file) is timed
  // over, named, and the load still succeeds.
  { std::ofstream(dir + "/plain") << "a file, not a directory"; }
  options.kernel_choice_file = dir + "/plain/kernel-choice.txt";
  auto third = Transformer::Load(*f, options);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_THAT((*third)->kernel_choice_source(), StartsWith("timed "));
  EXPECT_THAT((*third)->kernel_choice_source(),
              HasSubstr("; not saved: cannot "));
  EXPECT_THAT((*third)->kernel_choice_source(), HasSubstr(dir + "/plain"));
}

TEST(KernelChoiceCacheTest, Avx512Fp32PanelsTimeNothingAndWriteNothing) {
  ScopedSmallGemmIsa avx512(SmallGemmIsa::kAvx512);
  if (!avx512.ok()) GTEST_SKIP() << "this CPU lacks AVX-512 F/BW/VL/VNNI";
  auto f = testing::OpenModel(testing::TestDataPath("models/stories260K.gguf"));
  const std::string path = testing::MakeTempDir() + "/kernel-choice.txt";
  auto t = Transformer::Load(*f, Fp32WithChoiceFile(path));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->kernel_choice_source(),
            "nothing to time (packed weights, fp32 panels)");
  EXPECT_THAT((*t)->KernelChoiceSummary(), HasSubstr("qkv f32 panels"));
  EXPECT_FALSE(std::ifstream(path).good()) << "nothing timed, nothing saved";
}

}  // namespace
}  // namespace lumen::engine::kernels
