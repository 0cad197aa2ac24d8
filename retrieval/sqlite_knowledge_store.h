#pragma once
// SqliteKnowledgeStore: the embedded KnowledgeStore. SQLite (WAL,
// synchronous=FULL) in the data directory is the source of truth for
// collections, documents, chunks, metadata and embeddings; an upsert returns
// only after its transaction is durable. FTS5 (trigram tokenizer, so Chinese
// works) gives BM25 keyword search; one HNSW index per collection, derived
// from SQLite and caught up from its change log, gives vector search; hybrid
// search fuses both ranks (reciprocal rank fusion).

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "retrieval/knowledge_store.h"
#include "retrieval/sqlite/sqlite_db.h"

namespace lumen::retrieval {

class SqliteKnowledgeStore final : public KnowledgeStore {
 public:
  // Opens (creating) the store in `dir`, loading or rebuilding each
  // collection's vector index. `embedder` may be null (keyword-only).
  static absl::StatusOr<std::unique_ptr<SqliteKnowledgeStore>> Open(
      const std::string& dir, Embedder* embedder, ChunkerOptions chunking = {});
  ~SqliteKnowledgeStore() override;  // saves the vector indexes

  bool has_embedder() const override { return embedder_ != nullptr; }
  // AlreadyExists, InvalidArgument (bad name).
  absl::Status CreateCollection(const std::string& name,
                                const std::string& owner,
                                const std::vector<std::string>& shared_with,
                                const HnswOptions& hnsw) override;
  absl::StatusOr<CollectionInfo> GetCollection(
      const std::string& name) const override;
  absl::StatusOr<std::vector<CollectionInfo>> ListCollections() const override;
  absl::Status DeleteCollection(const std::string& name) override;
  // Idempotent by document id and content hash. InvalidArgument names a
  // malformed document (missing id, bad metadata JSON).
  absl::StatusOr<UpsertResult> Upsert(
      const std::string& collection,
      const std::vector<DocumentInput>& documents) override;
  absl::StatusOr<int> DeleteDocuments(
      const std::string& collection,
      const std::vector<std::string>& ids) override;
  absl::StatusOr<std::vector<ChunkHit>> Search(
      const std::string& collection, const SearchRequest& request) override;
  int64_t TotalDocuments() const override;
  // Tombstoned vectors still in the collection's HNSW graph.
  absl::StatusOr<size_t> IndexTombstones(
      const std::string& collection) const override;
  // Saves every vector index with the change sequence it covers.
  absl::Status SaveIndexes() override;

 private:
  SqliteKnowledgeStore() = default;
  absl::StatusOr<int64_t> CollectionId(const std::string& name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::Status LoadIndex(int64_t id, int dim, const HnswOptions& hnsw)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // Rebuilds a collection's index from SQLite when tombstones pile up
  // (more than half of the live vectors, and at least 256).
  absl::Status MaybeCompact(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  std::string IndexPath(int64_t id) const;
  absl::StatusOr<std::vector<ChunkHit>> Keyword(int64_t cid,
                                                const SearchRequest& r, int k);
  absl::StatusOr<std::vector<ChunkHit>> Vector(int64_t cid,
                                               const SearchRequest& r, int k);
  absl::StatusOr<ChunkHit> LoadChunk(int64_t chunk_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::StatusOr<bool> PassesFilter(
      const ChunkHit& hit,
      const std::map<std::string, std::string>& filter) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  std::shared_ptr<VectorIndex> FindIndex(int64_t id) const;

  std::string dir_;
  Embedder* embedder_ = nullptr;
  ChunkerOptions chunking_;
  // Held only for SQL, never while embedding: an ingest embedding its chunks
  // does not stall searches.
  mutable std::mutex db_mu_;
  std::unique_ptr<sqlite::Connection> db_ ABSL_GUARDED_BY(db_mu_);
  // The index map; each VectorIndex has its own reader/writer lock. Indexes
  // are changed only with db_mu_ also held, in commit order.
  mutable std::mutex indexes_mu_;
  std::map<int64_t, std::shared_ptr<VectorIndex>> indexes_
      ABSL_GUARDED_BY(indexes_mu_);
};

}  // namespace lumen::retrieval
