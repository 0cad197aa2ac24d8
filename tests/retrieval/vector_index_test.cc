#include "retrieval/vector_index.h"

#include <algorithm>
#include <iostream>
#include <random>
#include <set>

#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::retrieval {
namespace {

TEST(VectorIndexTest, RecallAtTenOnTwentyThousandRandomVectors) {
  constexpr int kDim = 384, kN = 20000, kQueries = 100, kK = 10;
  std::mt19937 rng(5);
  std::normal_distribution<float> n;
  std::vector<float> data(static_cast<size_t>(kN) * kDim);
  for (float& x : data) x = n(rng);
  for (int i = 0; i < kN; ++i)
    Normalize(&data[static_cast<size_t>(i) * kDim], kDim);
  auto index = VectorIndex::Create(kDim, HnswOptions{32, 200, 600}, kN);
  for (int i = 0; i < kN; ++i)
    index->Add(i, &data[static_cast<size_t>(i) * kDim]);
  int found = 0;
  for (int q = 0; q < kQueries; ++q) {
    std::vector<float> query(kDim);
    for (float& x : query) x = n(rng);
    Normalize(query.data(), kDim);
    std::vector<std::pair<float, int>> exact;
    for (int i = 0; i < kN; ++i) {
      float dot = 0;
      for (int d = 0; d < kDim; ++d)
        dot += query[d] * data[static_cast<size_t>(i) * kDim + d];
      exact.push_back({-dot, i});
    }
    std::partial_sort(exact.begin(), exact.begin() + kK, exact.end());
    std::set<int> truth;
    for (int i = 0; i < kK; ++i) truth.insert(exact[i].second);
    for (const VectorHit& h : index->Search(query.data(), kK))
      found += truth.count(h.label);
  }
  const double recall = static_cast<double>(found) / (kQueries * kK);
  std::cout << "HNSW recall@10 on 20,000 x 384: " << recall << "\n";
  EXPECT_GE(recall, 0.95);
}

TEST(VectorIndexTest, InnerProductKeepsMagnitudes) {
  HnswOptions ip;
  ip.cosine = false;
  auto index = VectorIndex::Create(2, ip);
  const float small[] = {1, 0}, big[] = {3, 0.5f};
  index->Add(1, small);
  index->Add(2, big);
  const float q[] = {1, 0};
  auto hits = index->Search(q, 2);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].label, 2);  // the longer vector wins on inner product
  EXPECT_NEAR(hits[0].score, 3.0f, 1e-5);
  auto cos = VectorIndex::Create(2, HnswOptions{});
  cos->Add(1, small);
  cos->Add(2, big);
  EXPECT_EQ(cos->Search(q, 2)[0].label, 1);  // but not on cosine
}

TEST(VectorIndexTest, RemoveAndReAddAndSaveLoadKeepTheSameAnswers) {
  auto index = VectorIndex::Create(2, HnswOptions{});
  const float a[] = {1, 0}, b[] = {0, 1}, c[] = {0.7f, 0.7f};
  index->Add(1, a);
  index->Add(2, b);
  index->Add(3, c);
  index->Remove(1);
  index->Remove(1);   // twice: ignored
  index->Remove(42);  // unknown: ignored
  EXPECT_EQ(index->size(), 2u);
  EXPECT_EQ(index->deleted(), 1u);
  const float q[] = {1, 0};
  EXPECT_EQ(index->Search(q, 1)[0].label, 3);
  index->Add(1, a);  // re-added: the tombstone is lifted
  EXPECT_EQ(index->deleted(), 0u);
  EXPECT_EQ(index->Search(q, 1)[0].label, 1);
  index->Add(1, b);  // replaced in place
  EXPECT_EQ(index->size(), 3u);
  EXPECT_EQ(index->Search(q, 1)[0].label, 3);
  index->Remove(2);

  const std::string path = lumen::testing::MakeTempDir() + "/i.hnsw";
  ASSERT_TRUE(index->Save(path, 17, "layout-a").ok());
  EXPECT_THAT(VectorIndex::Load(path, 2, HnswOptions{}, "layout-b"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::HasSubstr("layout-a")));
  auto loaded = VectorIndex::Load(path, 2, HnswOptions{}, "layout-a");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->seq, 17);
  EXPECT_EQ(loaded->index->size(), 2u);
  EXPECT_EQ(loaded->index->deleted(), 1u);
  EXPECT_EQ(loaded->index->Search(q, 1)[0].label, 3);
  EXPECT_THAT(VectorIndex::Load(path + ".none", 2, HnswOptions{}, "layout-a"),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

}  // namespace
}  // namespace lumen::retrieval
