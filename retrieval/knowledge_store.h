#pragma once
// KnowledgeStore: collections of documents, chunked, embedded and indexed
// for retrieval (keyword, vector and hybrid search). The one implementation
// is KnowledgeBase (knowledge_base.h) over a backend's DocumentStore:
// SQLite in a data directory (embedded default) or PostgreSQL shared by
// several lumend replicas. Thread-safe: every method may be called from any
// thread; none holds a lock while embedding.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "retrieval/chunker.h"
#include "retrieval/embedder.h"
#include "retrieval/vector_index.h"

namespace lumen::retrieval {

struct CollectionInfo {
  std::string name;
  std::string owner;                     // tenant
  std::vector<std::string> shared_with;  // tenants with read access
  int dim = 0;                           // 0: keyword-only (no embedding model)
  HnswOptions hnsw;
  // The model whose vectors the collection holds (empty name when
  // keyword-only).
  EmbeddingModelInfo embedding_model;
  bool reembedding = false;  // `lumen collection reembed` is under way
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
  double score = 0;  // vector: cosine; keyword: relevance; hybrid: RRF
  std::string text;
  // Byte offsets of `text` in the document's text (UTF-8).
  int64_t start = 0;
  int64_t end = 0;
  std::string source;
  std::string title;
  std::string metadata_json;
};

// Progress of a re-embedding: chunks done of total.
struct ReembedProgress {
  int64_t done = 0;
  int64_t total = 0;
};

// Where and how to open a store.
struct StoreOptions {
  // A data directory (SQLite, the embedded default) or a PostgreSQL
  // connection URI (postgresql://... or postgres://...).
  std::string location;
  // PostgreSQL: where this replica saves its derived vector indexes (e.g.
  // lumend's --data-dir); empty: rebuilt from the database at every start.
  // SQLite keeps them in the data directory.
  std::string index_dir;
  Embedder* embedder = nullptr;  // null: keyword-only; must outlive the store
  ChunkerOptions chunking;
};

// True when `location` names a PostgreSQL database rather than a directory.
bool IsPostgresLocation(const std::string& location);
// `location` fit for logs: a URI's password becomes "***".
std::string RedactLocation(const std::string& location);

class KnowledgeStore {
 public:
  virtual ~KnowledgeStore() = default;

  // Opens (creating, migrating) the store, loading or rebuilding each
  // collection's vector index. Unavailable when the database cannot be
  // reached, FailedPrecondition for a schema newer than this build.
  static absl::StatusOr<std::unique_ptr<KnowledgeStore>> Open(
      const StoreOptions& options);
  // The SQLite store in `dir`.
  static absl::StatusOr<std::unique_ptr<KnowledgeStore>> Open(
      const std::string& dir, Embedder* embedder, ChunkerOptions chunking = {});

  virtual bool has_embedder() const = 0;
  // AlreadyExists, InvalidArgument (bad name or HNSW parameters).
  virtual absl::Status CreateCollection(
      const std::string& name, const std::string& owner,
      const std::vector<std::string>& shared_with, const HnswOptions& hnsw) = 0;
  // NotFound.
  virtual absl::StatusOr<CollectionInfo> GetCollection(
      const std::string& name) const = 0;
  virtual absl::StatusOr<std::vector<CollectionInfo>> ListCollections()
      const = 0;
  virtual absl::Status DeleteCollection(const std::string& name) = 0;
  // Idempotent by document id and content hash; returns after the batch is
  // durable (all or nothing). InvalidArgument names a malformed document;
  // FailedPrecondition when the collection's vectors come from another
  // embedding model.
  virtual absl::StatusOr<UpsertResult> Upsert(
      const std::string& collection,
      const std::vector<DocumentInput>& documents) = 0;
  // Deletes the named documents (unknown ids are skipped); returns how many
  // existed.
  virtual absl::StatusOr<int> DeleteDocuments(
      const std::string& collection, const std::vector<std::string>& ids) = 0;
  // InvalidArgument for top_k outside [1, 100]; FailedPrecondition for a
  // vector search on a keyword-only collection or one whose vectors come from
  // another embedding model (the message names both models).
  virtual absl::StatusOr<std::vector<ChunkHit>> Search(
      const std::string& collection, const SearchRequest& request) = 0;
  // Re-embeds every chunk of the collection with this store's embedding
  // model and records it as the collection's model; `progress` (may be
  // empty) is called after each batch and stops the work by returning false
  // (Cancelled; the collection stays re-embedding until a later Reembed
  // completes). FailedPrecondition without a model.
  virtual absl::Status Reembed(
      const std::string& collection,
      const std::function<bool(const ReembedProgress&)>& progress) = 0;
  // Documents in all collections; the last count read when the database
  // cannot be reached.
  virtual int64_t TotalDocuments() const = 0;
  // Tombstoned vectors still in the collection's HNSW graph.
  virtual absl::StatusOr<size_t> IndexTombstones(
      const std::string& collection) const = 0;
  // Saves every vector index with the change sequence it covers.
  virtual absl::Status SaveIndexes() = 0;
};

}  // namespace lumen::retrieval
