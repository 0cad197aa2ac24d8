// KvCache's arena backed in installments (PopulateSome): each ends on a
// 2 MiB boundary or at the arena's end, together they back every page, and
// rows written before keep their values.

#include "engine/kv_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

TEST(KvCacheTest, PopulatesTheArenaInInstallmentsKeepingRows) {
  if (!testing::KernelPopulatesPages())
    GTEST_SKIP() << "no MADV_POPULATE_WRITE here";
  // 2 layers, 2 KV heads of 64, f32, blocks of 16: 8 KiB of keys per block
  // and layer, 32 KiB per block; 320 blocks = 10 MiB.
  auto made = KvCache::Create({2, 2, 64, 16, 320, KvElement::kF32});
  ASSERT_TRUE(made.ok()) << made.status();
  KvCache& cache = **made;
  const int64_t total = cache.total_bytes();
  ASSERT_EQ(total, int64_t{10} << 20);
  EXPECT_EQ(cache.populated_bytes(), 0);

  // A row written before populating keeps its values.
  float* row = cache.Keys(3, 1);
  for (int i = 0; i < 64; ++i) row[i] = 0.5f * static_cast<float>(i);

  const auto base = reinterpret_cast<uintptr_t>(cache.Keys(0, 0));
  int64_t last = 0;
  int installments = 0;
  bool more = true;
  while (more) {
    more = cache.PopulateSome(int64_t{1} << 20);
    ++installments;
    const int64_t now = cache.populated_bytes();
    ASSERT_GT(now, last) << "installment " << installments;
    ASSERT_LE(now - last, (int64_t{3} << 20)) << "installment " << installments;
    if (now < total) {
      EXPECT_EQ((base + now) % (uintptr_t{2} << 20), 0u)
          << "installment " << installments << " ends mid huge page";
    }
    last = now;
    ASSERT_LT(installments, 100);
  }
  EXPECT_EQ(cache.populated_bytes(), total);
  EXPECT_GE(installments, 4);  // 10 MiB, at most 3 MiB at a time
  EXPECT_FALSE(cache.PopulateSome(int64_t{1} << 20));  // nothing left

  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((total + page - 1) / page);
  ASSERT_EQ(::mincore(reinterpret_cast<void*>(base), total, resident.data()),
            0);
  for (size_t i = 0; i < resident.size(); ++i) {
    ASSERT_TRUE(resident[i] & 1) << "page " << i << " not backed";
  }
  for (int i = 0; i < 64; ++i) ASSERT_EQ(row[i], 0.5f * static_cast<float>(i));
  EXPECT_EQ(cache.Values(319, 1)[2 * 16 * 64 - 1], 0.0f);
  EXPECT_TRUE(cache.Prefault().ok());  // already whole: nothing to do
}

}  // namespace
}  // namespace lumen::engine
