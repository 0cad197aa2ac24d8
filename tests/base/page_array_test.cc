#include "base/page_array.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace lumen {
namespace {

size_t Page() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)); }

TEST(PageArrayTest, ZerosAreAlignedAndWritable) {
  const size_t n = (size_t{3} << 20) / sizeof(float) + 5;  // 3 MiB + 20 bytes
  auto zeros = PageArray<float>::Zeros(n);
  ASSERT_TRUE(zeros.ok()) << zeros.status();
  PageArray<float> a = std::move(*zeros);
  ASSERT_EQ(a.size(), n);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % PageMapping::kHugePage, 0u);
  EXPECT_EQ(a.mapped_bytes(),
            (n * sizeof(float) + Page() - 1) / Page() * Page());
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(a.data()[i], 0.0f) << i;
  for (size_t i = 0; i < n; ++i) a.data()[i] = static_cast<float>(i);
  EXPECT_EQ(a.span().back(), static_cast<float>(n - 1));

  PageArray<float> moved = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.data(), nullptr);
  ASSERT_EQ(moved.size(), n);
  EXPECT_EQ(moved.data()[n - 1], static_cast<float>(n - 1));
}

TEST(PageArrayTest, MapsWholePagesFromAHugePageBoundary) {
  const size_t huge = PageMapping::kHugePage;
  for (size_t bytes : {size_t{5}, Page(), huge - 1, huge, huge + 1,
                       2 * huge + huge / 2, 8 * huge + Page() + 1}) {
    auto m = PageMapping::Map(bytes);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % huge, 0u) << bytes;
    EXPECT_EQ(m->mapped_bytes(), (bytes + Page() - 1) / Page() * Page())
        << bytes;
    static_cast<uint8_t*>(m->data())[m->mapped_bytes() - 1] = 7;
  }
}

// Nothing of the over-sized first mapping stays behind after the array (the
// trimmed tail is at least a page; what lies before the array depends on
// where the kernel put the mapping), and the array is unmapped once gone.
TEST(PageArrayTest, UnmapsTheTrimmedHeadAndTailAndItselfWhenDestroyed) {
  uint8_t* data;
  size_t bytes;
  std::vector<unsigned char> resident(8);
  {
    auto m = PageMapping::Map(3 * Page());
    ASSERT_TRUE(m.ok()) << m.status();
    data = static_cast<uint8_t*>(m->data());
    bytes = m->mapped_bytes();
    ASSERT_EQ(bytes, 3 * Page());
    EXPECT_EQ(::mincore(data, bytes, resident.data()), 0);
    EXPECT_EQ(::mincore(data + bytes, Page(), resident.data()), -1);
    EXPECT_EQ(errno, ENOMEM);
  }
  EXPECT_EQ(::mincore(data, bytes, resident.data()), -1);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(PageArrayTest, EmptyMapsNothingAndHugeSizesAreRefused) {
  auto a = PageArray<uint8_t>::Zeros(0);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->empty());
  EXPECT_EQ(a->data(), nullptr);
  // SIZE_MAX / 4 + 2 floats would wrap to 4 bytes.
  EXPECT_EQ(PageArray<float>::Zeros(SIZE_MAX / 4 + 2).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(PageMapping::Map(SIZE_MAX - 10).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace lumen
