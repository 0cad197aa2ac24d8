#pragma once
// Writing the PostgreSQL change log, inside a writer's transaction: lock the
// collection's row (writers of one collection take turns, so their change
// numbers commit in order), append the numbered changes, move the counters,
// and notify the other replicas (delivered at commit).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "retrieval/embedder.h"
#include "retrieval/postgres/pg_connection.h"

namespace lumen::retrieval::postgres {

// Locks the collection's row until the transaction ends and returns its
// last change number. NotFound when the collection is gone;
// FailedPrecondition when `expected_model` is set and the collection's
// model differs (another replica re-embedded it meanwhile).
absl::StatusOr<int64_t> LockCollection(
    Connection* db, int64_t collection,
    const std::optional<EmbeddingModelInfo>& expected_model = std::nullopt);

// Appends changes seq+1, seq+2, ... (chunks[i], removed[i] "true"/"false"),
// adds the deltas to the collection's counters, records the new last change
// number and notifies the replicas when anything changed. Returns the new
// last change number.
absl::StatusOr<int64_t> LogChanges(Connection* db, int64_t collection,
                                   int64_t seq,
                                   const std::vector<int64_t>& chunks,
                                   const std::vector<std::string>& removed,
                                   int64_t document_delta, int64_t chunk_delta);

}  // namespace lumen::retrieval::postgres
