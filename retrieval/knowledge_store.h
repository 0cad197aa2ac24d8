#pragma once
// KnowledgeStore: collections of documents, chunked, embedded and indexed
// for retrieval. SQLite (WAL, synchronous=FULL) in the data directory is the
// source of truth for collections, documents, chunks, metadata and
// embeddings; an upsert returns only after its transaction is durable. FTS5
// (trigram tokenizer, so Chinese works) gives BM25 keyword search; one HNSW
// index per collection, derived from SQLite, gives vector search; hybrid
// search fuses both ranks (reciprocal rank fusion). Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "retrieval/chunker.h"
#include "retrieval/vector_index.h"

struct sqlite3;

namespace lumen::retrieval {

// Turns passages into embeddings; implemented by the embedding model.
class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual int dim() const = 0;
  // [texts.size()][dim], L2-normalized.
  virtual absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) = 0;
  virtual int CountTokens(absl::string_view text) const = 0;
};

struct CollectionInfo {
  std::string name;
  std::string owner;                     // tenant
  std::vector<std::string> shared_with;  // tenants with read access
  int dim = 0;                           // 0: keyword-only (no embedding model)
  HnswOptions hnsw;
  int64_t documents = 0;
  int64_t chunks = 0;
};

struct DocumentInput {
  std::string id;
  std::string source;
  std::string title;
  std::string metadata_json;  // a JSON object, may be empty
  std::string text;
};

struct UpsertResult {
  int inserted = 0;
  int updated = 0;
  int unchanged = 0;  // same id and content hash: nothing to do
  int chunks = 0;
};

enum class SearchMode { kVector, kKeyword, kHybrid };

struct SearchRequest {
  std::string query;
  int top_k = 5;
  double min_score = 0;
  std::map<std::string, std::string> filter;  // metadata field == value
  SearchMode mode = SearchMode::kHybrid;
};

struct ChunkHit {
  std::string collection;
  std::string document_id;
  int64_t chunk_id = 0;
  double score = 0;  // vector: cosine; keyword: -bm25; hybrid: RRF
  std::string text;
  std::string source;
  std::string title;
  std::string metadata_json;
};

class KnowledgeStore {
 public:
  // Opens (creating) the store in `dir`, loading or rebuilding each
  // collection's vector index. `embedder` may be null (keyword-only).
  static absl::StatusOr<std::unique_ptr<KnowledgeStore>> Open(
      const std::string& dir, Embedder* embedder, ChunkerOptions chunking = {});
  ~KnowledgeStore();  // saves the vector indexes

  bool has_embedder() const { return embedder_ != nullptr; }
  // AlreadyExists, InvalidArgument (bad name).
  absl::Status CreateCollection(const std::string& name,
                                const std::string& owner,
                                const std::vector<std::string>& shared_with,
                                const HnswOptions& hnsw);
  absl::StatusOr<CollectionInfo> GetCollection(const std::string& name) const;
  absl::StatusOr<std::vector<CollectionInfo>> ListCollections() const;
  absl::Status DeleteCollection(const std::string& name);
  // Idempotent by document id and content hash. InvalidArgument names a
  // malformed document (missing id, bad metadata JSON).
  absl::StatusOr<UpsertResult> Upsert(
      const std::string& collection,
      const std::vector<DocumentInput>& documents);
  absl::StatusOr<int> DeleteDocuments(const std::string& collection,
                                      const std::vector<std::string>& ids);
  absl::StatusOr<std::vector<ChunkHit>> Search(const std::string& collection,
                                               const SearchRequest& request);
  int64_t TotalDocuments() const;
  // Tombstoned vectors still in the collection's HNSW graph.
  absl::StatusOr<size_t> IndexTombstones(const std::string& collection) const;
  // Saves every vector index with the change sequence it covers.
  absl::Status SaveIndexes();

 private:
  KnowledgeStore() = default;
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
