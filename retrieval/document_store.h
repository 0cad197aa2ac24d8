#pragma once
// DocumentStore: what a knowledge-store backend (SQLite, PostgreSQL) keeps in
// its database: collections, documents, chunks with their embeddings, the
// keyword index and the change log. KnowledgeBase (knowledge_base.h) builds
// everything else on top of it: validation, chunking, embedding, the vector
// indexes and hybrid fusion, so that both backends behave the same.
//
// Thread-safe: every method may be called from any thread; each takes its
// database connection for the duration of its SQL only. Errors: NotFound for
// a missing collection, Unavailable while the database cannot be reached,
// Internal/DataLoss for database errors.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "retrieval/change_log.h"
#include "retrieval/knowledge_store.h"

namespace lumen::retrieval {

// A collection as stored: its database id and what the user sees.
struct CollectionRecord {
  int64_t id = 0;
  CollectionInfo info;
};

// Metadata field == value conditions (all must hold).
using MetadataFilter = std::map<std::string, std::string>;

struct ChunkWrite {
  std::string text;
  int64_t start = 0;  // byte offsets in the document
  int64_t end = 0;
  std::vector<float> embedding;  // [dim], or empty (keyword-only)
};

struct DocumentWrite {
  DocumentInput document;    // text is not stored again: chunks hold it
  std::string content_hash;  // of text, title, source and metadata
  std::vector<ChunkWrite> chunks;
};

struct WriteResult {
  int inserted = 0;
  int updated = 0;
  int unchanged = 0;  // written meanwhile with the same content hash
  int chunks = 0;
};

class DocumentStore : public ChangeLog {
 public:
  // --- Collections ---
  // AlreadyExists when the name is taken.
  virtual absl::StatusOr<CollectionRecord> CreateCollection(
      const CollectionInfo& info) = 0;
  virtual absl::StatusOr<CollectionRecord> GetCollection(
      const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<CollectionRecord>> ListCollections() = 0;
  // Deletes the collection with its documents, chunks and change log.
  virtual absl::Status DeleteCollection(int64_t collection) = 0;
  // Records the collection's embedding model (and dimension) and whether a
  // re-embedding is under way.
  virtual absl::Status SetEmbeddingModel(int64_t collection,
                                         const EmbeddingModelInfo& model,
                                         bool reembedding) = 0;

  // --- Documents ---
  // The stored content hashes of those of `ids` that exist.
  virtual absl::StatusOr<std::map<std::string, std::string>> ContentHashes(
      int64_t collection, const std::vector<std::string>& ids) = 0;
  // One transaction: each document (ids are unique within the call)
  // replaces the stored one of its id (its
  // old chunks are removed and logged as removals, its new chunks added and
  // logged), unless the stored content hash is already the same. When
  // `expected_model` is set, FailedPrecondition if the collection's model
  // differs at commit time (another replica re-embedded it meanwhile).
  // Durable on return.
  virtual absl::StatusOr<WriteResult> WriteDocuments(
      int64_t collection, const std::vector<DocumentWrite>& documents,
      const std::optional<EmbeddingModelInfo>& expected_model) = 0;
  // One transaction; returns how many of `ids` existed.
  virtual absl::StatusOr<int> DeleteDocuments(
      int64_t collection, const std::vector<std::string>& ids) = 0;
  virtual absl::StatusOr<int64_t> TotalDocuments() = 0;

  // --- Search ---
  // The best `k` chunks for the words of `query` that pass `filter`, best
  // first; score grows with relevance. Empty for a query with no usable word.
  virtual absl::StatusOr<std::vector<ChunkHit>> KeywordSearch(
      int64_t collection, const std::string& query,
      const MetadataFilter& filter, int k) = 0;
  // The chunks of `ids` that still exist and pass `filter`, in the order of
  // `ids` (score left 0).
  virtual absl::StatusOr<std::vector<ChunkHit>> LoadChunks(
      int64_t collection, const std::vector<int64_t>& ids,
      const MetadataFilter& filter) = 0;

  // --- Re-embedding ---
  // Chunks of `collection` with id > after_id in id order, at most `limit`:
  // (id, text).
  virtual absl::StatusOr<std::vector<std::pair<int64_t, std::string>>>
  ChunkTexts(int64_t collection, int64_t after_id, int limit) = 0;
  // One transaction: stores the embeddings of chunks (those deleted
  // meanwhile are skipped) and logs each as an addition.
  virtual absl::Status UpdateEmbeddings(
      int64_t collection,
      const std::vector<std::pair<int64_t, std::vector<float>>>&
          embeddings) = 0;

  // --- Watching other writers (replicas sharing the database) ---
  // Starts calling `on_change(collection)` (0: collections were created or
  // deleted) from a backend thread when another process commits changes, and
  // `on_reconnect()` after a lost connection came back (anything may have
  // changed). Backends with a single writer do nothing.
  virtual absl::Status Watch(std::function<void(int64_t collection)> on_change,
                             std::function<void()> on_reconnect) {
    return absl::OkStatus();
  }
  // Stops the callbacks started by Watch; returns after the last one has
  // finished. Also done by the destructor.
  virtual void Unwatch() {}
};

}  // namespace lumen::retrieval
