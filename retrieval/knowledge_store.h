#pragma once
// KnowledgeStore: collections of documents, chunked, embedded and indexed
// for retrieval (keyword, vector and hybrid search). Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "retrieval/chunker.h"
#include "retrieval/vector_index.h"

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

// The store interface. The embedded backend is SQLite
// (sqlite_knowledge_store.h); a PostgreSQL backend shared by several lumend
// replicas would implement the same interface.
class KnowledgeStore {
 public:
  virtual ~KnowledgeStore() = default;

  // Opens (creating) the SQLite store in `dir`, loading or rebuilding each
  // collection's vector index. `embedder` may be null (keyword-only).
  static absl::StatusOr<std::unique_ptr<KnowledgeStore>> Open(
      const std::string& dir, Embedder* embedder, ChunkerOptions chunking = {});

  virtual bool has_embedder() const = 0;
  // AlreadyExists, InvalidArgument (bad name).
  virtual absl::Status CreateCollection(
      const std::string& name, const std::string& owner,
      const std::vector<std::string>& shared_with, const HnswOptions& hnsw) = 0;
  virtual absl::StatusOr<CollectionInfo> GetCollection(
      const std::string& name) const = 0;
  virtual absl::StatusOr<std::vector<CollectionInfo>> ListCollections()
      const = 0;
  virtual absl::Status DeleteCollection(const std::string& name) = 0;
  // Idempotent by document id and content hash; returns after the batch is
  // durable. InvalidArgument names a malformed document.
  virtual absl::StatusOr<UpsertResult> Upsert(
      const std::string& collection,
      const std::vector<DocumentInput>& documents) = 0;
  virtual absl::StatusOr<int> DeleteDocuments(
      const std::string& collection, const std::vector<std::string>& ids) = 0;
  virtual absl::StatusOr<std::vector<ChunkHit>> Search(
      const std::string& collection, const SearchRequest& request) = 0;
  virtual int64_t TotalDocuments() const = 0;
  // Tombstoned vectors still in the collection's HNSW graph.
  virtual absl::StatusOr<size_t> IndexTombstones(
      const std::string& collection) const = 0;
  // Saves every vector index with the change sequence it covers.
  virtual absl::Status SaveIndexes() = 0;
};

}  // namespace lumen::retrieval
