#include "base/prefault.h"

#include <sys/mman.h>

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace lumen {
namespace {

TEST(PrefaultTest, KeepsContentsAtAnyAlignment) {
  std::vector<uint8_t> v(5 << 20);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i * 7);
  // Misaligned starts and ends, a range inside one page, and nothing.
  for (size_t offset : {size_t{0}, size_t{1}, size_t{4095}, size_t{3 << 20}}) {
    for (size_t bytes : {size_t{0}, size_t{10}, size_t{2 << 20} + 3}) {
      PrefaultPages(v.data() + offset, bytes);
    }
  }
  PrefaultPages(nullptr, 1 << 20);
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(v[i], static_cast<uint8_t>(i * 7)) << "byte " << i;
  }
}

TEST(PrefaultTest, RefusesRangesWithoutAWholePage) {
  std::vector<uint8_t> v(8192);
  uint8_t* page = reinterpret_cast<uint8_t*>(
      (reinterpret_cast<uintptr_t>(v.data()) + 4095) & ~uintptr_t{4095});
  EXPECT_FALSE(PopulatePages(page + 1, 100));
  EXPECT_FALSE(PopulatePages(nullptr, 1 << 20));
  EXPECT_FALSE(AdviseHugePages(page, 4096));  // no whole 2 MiB page inside
}

TEST(PrefaultTest, ReservedVectorsAreWritableAndZeroWhereAssigned) {
  std::vector<float> reserved;
  ReservePrefaulted(reserved, 3 << 20);
  EXPECT_GE(reserved.capacity(), size_t{3} << 20);
  EXPECT_TRUE(reserved.empty());
  std::vector<float> assigned;
  AssignPrefaulted(assigned, 3 << 20, 1.5f);
  ASSERT_EQ(assigned.size(), size_t{3} << 20);
  for (float x : assigned) ASSERT_EQ(x, 1.5f);
}

TEST(PrefaultTest, PopulatesAFreshMapping) {
  const size_t bytes = 4 << 20;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  // Linux 5.14 and later: every page is resident afterwards (mincore).
  if (!PopulatePages(p, bytes)) {
    ::munmap(p, bytes);
    GTEST_SKIP() << "this kernel has no MADV_POPULATE_WRITE";
  }
  std::vector<unsigned char> resident(bytes / 4096);
  ASSERT_EQ(::mincore(p, bytes, resident.data()), 0);
  for (size_t i = 0; i < resident.size(); ++i) {
    EXPECT_TRUE(resident[i] & 1) << "page " << i;
  }
  EXPECT_EQ(static_cast<uint8_t*>(p)[bytes - 1], 0);
  ::munmap(p, bytes);
}

}  // namespace
}  // namespace lumen
