#pragma once
// VectorIndex: one collection's HNSW graph (hnswlib) with inner-product
// distance: cosine similarity on L2-normalized vectors, or raw inner product.
// It is derived data: SQLite holds the embeddings; the index is saved with the
// change sequence it covers and caught up or rebuilt at start. Deletes and
// updates are tombstones (markDelete); Compact() rebuilds without them.
// Thread-safe: searches share a lock, writes take it exclusively.

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hnswlib {
template <typename T>
class HierarchicalNSW;
class InnerProductSpace;
}  // namespace hnswlib

namespace lumen::retrieval {

struct HnswOptions {
  int m = 16;
  int ef_construction = 200;
  int ef_search = 64;
  // true: cosine similarity (vectors normalized); false: raw inner product.
  bool cosine = true;
};

struct VectorHit {
  int64_t label;  // chunk id
  float score;    // inner product (cosine for normalized vectors)
};

class VectorIndex {
 public:
  static std::unique_ptr<VectorIndex> Create(int dim,
                                             const HnswOptions& options,
                                             size_t capacity = 1024);
  // Loads a saved index; returns the sequence number it covers.
  static absl::StatusOr<std::pair<std::unique_ptr<VectorIndex>, int64_t>> Load(
      const std::string& path, int dim, const HnswOptions& options);
  ~VectorIndex();

  // Adds or replaces the vector of `label` ([dim] floats, normalized here).
  void Add(int64_t label, const float* vec);
  void Remove(int64_t label);
  std::vector<VectorHit> Search(const float* query, int k) const;
  // Writes the index and the sequence number it covers (atomic rename).
  absl::Status Save(const std::string& path, int64_t seq) const;

  int dim() const { return dim_; }
  size_t size() const;
  size_t deleted() const { return deleted_; }

 private:
  VectorIndex(int dim, const HnswOptions& options);
  int dim_;
  HnswOptions options_;
  std::unique_ptr<hnswlib::InnerProductSpace> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
  mutable std::shared_mutex mu_;
  size_t deleted_ = 0;
};

// Scales `v` to unit length (no-op for the zero vector).
void Normalize(float* v, int dim);

}  // namespace lumen::retrieval
