#pragma once
// ChangeLog: the ordered record of vector changes a backend keeps next to its
// chunks, from which every replica derives its HNSW indexes. Each collection's
// changes carry sequence numbers that grow in commit order (a reader that has
// applied everything up to seq S never later sees a new change below S).

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace lumen::retrieval {

struct ChangeRecord {
  int64_t seq = 0;
  int64_t chunk_id = 0;
  bool removed = false;
  // The chunk's current embedding for an addition ([dim]); empty for a
  // removal, or when the chunk is gone by now (its removal follows).
  std::vector<float> embedding;
};

class ChangeLog {
 public:
  virtual ~ChangeLog() = default;
  // The changes of `collection` with seq > after_seq, in seq order, at most
  // `limit`. Thread-safe.
  virtual absl::StatusOr<std::vector<ChangeRecord>> ReadChanges(
      int64_t collection, int64_t after_seq, int limit) = 0;
  // Every stored embedding of `collection` from one snapshot, and the
  // sequence number that snapshot covers. Thread-safe.
  virtual absl::StatusOr<int64_t> ScanEmbeddings(
      int64_t collection,
      const std::function<void(int64_t chunk_id, absl::Span<const float>)>&
          visit) = 0;
};

}  // namespace lumen::retrieval
