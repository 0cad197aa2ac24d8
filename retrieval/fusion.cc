#include "retrieval/fusion.h"

#include <algorithm>
#include <map>

namespace lumen::retrieval {

std::vector<ChunkHit> FuseReciprocalRank(
    const std::vector<std::vector<ChunkHit>>& ranked_lists, int top_k,
    double k) {
  std::map<int64_t, ChunkHit> fused;
  for (const std::vector<ChunkHit>& list : ranked_lists) {
    for (size_t rank = 0; rank < list.size(); ++rank) {
      const double contribution = 1.0 / (k + static_cast<double>(rank) + 1.0);
      auto [it, inserted] = fused.emplace(list[rank].chunk_id, list[rank]);
      it->second.score = (inserted ? 0.0 : it->second.score) + contribution;
    }
  }
  std::vector<ChunkHit> out;
  out.reserve(fused.size());
  for (auto& [id, hit] : fused) out.push_back(std::move(hit));
  std::stable_sort(
      out.begin(), out.end(),
      [](const ChunkHit& a, const ChunkHit& b) { return a.score > b.score; });
  if (top_k >= 0 && static_cast<int>(out.size()) > top_k) out.resize(top_k);
  return out;
}

}  // namespace lumen::retrieval
