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

#include "retrieval/knowledge_store.h"

struct sqlite3;

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
  absl::Status Exec(const std::string& sql) const;
  absl::StatusOr<int64_t> CollectionId(const std::string& name) const;
  absl::Status LoadIndex(int64_t id, int dim, const HnswOptions& hnsw);
  // Rebuilds a collection's index from SQLite when tombstones pile up
  // (more than half of the live vectors, and at least 256).
  absl::Status MaybeCompact(int64_t id);
  std::string IndexPath(int64_t id) const;
  absl::StatusOr<std::vector<ChunkHit>> Keyword(int64_t cid,
                                                const SearchRequest& r,
                                                int k) const;
  absl::StatusOr<std::vector<ChunkHit>> Vector(int64_t cid,
                                               const SearchRequest& r, int k);
  absl::StatusOr<ChunkHit> LoadChunk(int64_t chunk_id) const;
  bool PassesFilter(const ChunkHit& hit,
                    const std::map<std::string, std::string>& filter) const;

  std::string dir_;
  Embedder* embedder_ = nullptr;
  ChunkerOptions chunking_;
  sqlite3* db_ = nullptr;
  mutable std::recursive_mutex mu_;  // the connection and indexes_
  std::map<int64_t, std::unique_ptr<VectorIndex>> indexes_;
};

}  // namespace lumen::retrieval
