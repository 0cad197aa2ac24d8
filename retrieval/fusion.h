#pragma once
// Hybrid search: reciprocal rank fusion (Cormack et al., 2009) of ranked
// hit lists, e.g. vector and keyword results. Backend-independent.

#include <vector>

#include "retrieval/knowledge_store.h"

namespace lumen::retrieval {

// The RRF constant: ranks below ~60 contribute about equally.
inline constexpr double kRrfK = 60.0;

// Each chunk scores sum over lists of 1 / (k + rank) (rank from 1); the
// best `top_k` by that score, ties broken by chunk id. A chunk's fields are
// taken from the first list that has it. Pure function.
std::vector<ChunkHit> FuseReciprocalRank(
    const std::vector<std::vector<ChunkHit>>& ranked_lists, int top_k,
    double k = kRrfK);

}  // namespace lumen::retrieval
