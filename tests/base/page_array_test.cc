#include "base/page_array.h"

#include <unistd.h>

#include <cstdint>

#include "gtest/gtest.h"

namespace lumen {
namespace {

TEST(PageArrayTest, ZerosAreAlignedAndWritable) {
  const size_t n = (size_t{3} << 20) / sizeof(float) + 5;  // 3 MiB + 20 bytes
  auto zeros = PageArray<float>::Zeros(n);
  ASSERT_TRUE(zeros.ok()) << zeros.status();
  PageArray<float> a = std::move(*zeros);
  ASSERT_EQ(a.size(), n);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % PageMapping::kHugePage, 0u);
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
  auto m = PageMapping::Map(PageMapping::kHugePage + 1);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % PageMapping::kHugePage,
            0u);
  EXPECT_EQ(
      m->mapped_bytes(),
      PageMapping::kHugePage + static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
  // The last byte of the rounded-up mapping is writable.
  static_cast<uint8_t*>(m->data())[m->mapped_bytes() - 1] = 7;
}

TEST(PageArrayTest, EmptyMapsNothing) {
  auto a = PageArray<uint8_t>::Zeros(0);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->empty());
  EXPECT_EQ(a->data(), nullptr);
}

}  // namespace
}  // namespace lumen
