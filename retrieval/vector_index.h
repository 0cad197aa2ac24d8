#pragma once
// VectorIndex: one collection's HNSW graph (hnswlib) with inner-product
// distance: cosine similarity on L2-normalized vectors, or raw inner product.
// It is derived data: the database holds the embeddings; the index is saved
// with the change sequence it covers (VectorCatalog). Deletes are tombstones
// (markDelete); the catalog rebuilds an index when they pile up.
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

class VectorIndex;

// A saved index and the change sequence number it covers.
struct SavedIndex {
  std::unique_ptr<VectorIndex> index;
  int64_t seq = 0;
};

class VectorIndex {
 public:
  static std::unique_ptr<VectorIndex> Create(int dim,
                                             const HnswOptions& options,
                                             size_t capacity = 1024);
  // Loads the index saved at `path` if it was saved with `tag`: NotFound
  // without a saved index, FailedPrecondition for another tag, DataLoss for
  // an unreadable file.
  static absl::StatusOr<SavedIndex> Load(const std::string& path, int dim,
                                         const HnswOptions& options,
                                         const std::string& tag);
  ~VectorIndex();

  // Adds or replaces the vector of `label` ([dim] floats, normalized here
  // for cosine).
  void Add(int64_t label, const float* vec);
  // Tombstones `label`; unknown or already removed labels are ignored.
  void Remove(int64_t label);
  // The k nearest labels, best first.
  std::vector<VectorHit> Search(const float* query, int k) const;
  // Writes the index, the sequence number it covers and a tag (one line)
  // naming what it was built for; atomic renames, index first.
  absl::Status Save(const std::string& path, int64_t seq,
                    const std::string& tag) const;

  int dim() const { return dim_; }
  // Live (not tombstoned) vectors.
  size_t size() const;
  // Tombstoned vectors still in the graph.
  size_t deleted() const;

 private:
  VectorIndex(int dim, const HnswOptions& options);
  int dim_;
  HnswOptions options_;
  std::unique_ptr<hnswlib::InnerProductSpace> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
  mutable std::shared_mutex mu_;
};

// Scales `v` to unit length (no-op for the zero vector).
void Normalize(float* v, int dim);

}  // namespace lumen::retrieval
