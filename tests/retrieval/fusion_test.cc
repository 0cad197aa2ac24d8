#include "retrieval/fusion.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace lumen::retrieval {
namespace {

ChunkHit Hit(int64_t id) {
  ChunkHit h;
  h.chunk_id = id;
  h.text = "chunk " + std::to_string(id);
  h.score = 1000;  // the input scores must not leak into the fused ones
  return h;
}

std::vector<ChunkHit> Hits(const std::vector<int64_t>& ids) {
  std::vector<ChunkHit> out;
  for (int64_t id : ids) out.push_back(Hit(id));
  return out;
}

// Reciprocal rank fusion computed the slow, obvious way.
std::vector<std::pair<int64_t, double>> Reference(
    const std::vector<std::vector<int64_t>>& lists, int top_k, double k) {
  std::map<int64_t, double> score;
  for (const auto& list : lists) {
    for (size_t r = 0; r < list.size(); ++r)
      score[list[r]] += 1.0 / (k + r + 1);
  }
  std::vector<std::pair<int64_t, double>> out(score.begin(), score.end());
  std::stable_sort(out.begin(), out.end(),
                   [](auto& a, auto& b) { return a.second > b.second; });
  if (static_cast<int>(out.size()) > top_k) out.resize(top_k);
  return out;
}

TEST(FusionTest, MatchesTheReferenceOnATable) {
  struct Case {
    std::vector<std::vector<int64_t>> lists;
    int top_k;
    std::vector<int64_t> expected;  // worked out by hand with k = 60
  };
  const std::vector<Case> cases = {
      // C is in both lists and wins; B and D tie (1/62), ids break the tie.
      {{{1, 2, 3}, {3, 4}}, 3, {3, 1, 2}},
      {{{1, 2, 3}, {3, 4}}, 10, {3, 1, 2, 4}},
      // One list: its order is kept.
      {{{5, 9, 7}}, 2, {5, 9}},
      // Empty lists contribute nothing.
      {{{}, {8, 6}}, 5, {8, 6}},
      {{{}, {}}, 5, {}},
      // Second in both beats first in one.
      {{{1, 2}, {3, 2}}, 1, {2}},
  };
  for (const Case& c : cases) {
    std::vector<std::vector<ChunkHit>> lists;
    for (const auto& l : c.lists) lists.push_back(Hits(l));
    const std::vector<ChunkHit> fused = FuseReciprocalRank(lists, c.top_k);
    const auto ref = Reference(c.lists, c.top_k, kRrfK);
    ASSERT_EQ(fused.size(), c.expected.size());
    ASSERT_EQ(ref.size(), c.expected.size());
    for (size_t i = 0; i < fused.size(); ++i) {
      EXPECT_EQ(fused[i].chunk_id, c.expected[i]) << "rank " << i;
      EXPECT_EQ(ref[i].first, c.expected[i]);
      EXPECT_DOUBLE_EQ(fused[i].score, ref[i].second);
      EXPECT_EQ(fused[i].text, "chunk " + std::to_string(c.expected[i]));
    }
  }
}

}  // namespace
}  // namespace lumen::retrieval
