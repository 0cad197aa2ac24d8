#pragma once
// SqliteDocumentStore: the embedded backend. SQLite (WAL, synchronous=FULL)
// in the data directory is the source of truth for collections, documents,
// chunks, metadata and embeddings; a write returns only after its
// transaction is durable. FTS5 with the trigram tokenizer gives BM25 keyword
// search (substrings, so Chinese works without word segmentation). The
// change log has one global sequence (AUTOINCREMENT), which grows in commit
// order because SQLite has one writer at a time.
//
// Threads: thread-safe. Writes take the writer connection, reads a reader
// connection from the pool; no lock is held outside SQL.

#include <memory>
#include <string>

#include "retrieval/document_store.h"
#include "retrieval/sqlite/sqlite_db.h"

namespace lumen::retrieval::sqlite {

class SqliteDocumentStore final : public DocumentStore {
 public:
  // Opens (creating) `dir`/knowledge.db and migrates its schema.
  // FailedPrecondition for a schema newer than this build.
  static absl::StatusOr<std::unique_ptr<SqliteDocumentStore>> Open(
      const std::string& dir);

  absl::StatusOr<CollectionRecord> CreateCollection(
      const CollectionInfo& info) override;
  absl::StatusOr<CollectionRecord> GetCollection(
      const std::string& name) override;
  absl::StatusOr<std::vector<CollectionRecord>> ListCollections() override;
  absl::Status DeleteCollection(int64_t collection) override;
  absl::Status SetEmbeddingModel(int64_t collection,
                                 const EmbeddingModelInfo& model,
                                 bool reembedding) override;

  absl::StatusOr<std::map<std::string, std::string>> ContentHashes(
      int64_t collection, const std::vector<std::string>& ids) override;
  absl::StatusOr<WriteResult> WriteDocuments(
      int64_t collection, const std::vector<DocumentWrite>& documents,
      const std::optional<EmbeddingModelInfo>& expected_model) override;
  absl::StatusOr<int> DeleteDocuments(
      int64_t collection, const std::vector<std::string>& ids) override;
  absl::StatusOr<int64_t> TotalDocuments() override;

  absl::StatusOr<std::vector<ChunkHit>> KeywordSearch(
      int64_t collection, const std::string& query,
      const MetadataFilter& filter, int k) override;
  absl::StatusOr<std::vector<ChunkHit>> LoadChunks(
      int64_t collection, const std::vector<int64_t>& ids,
      const MetadataFilter& filter) override;

  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> ChunkTexts(
      int64_t collection, int64_t after_id, int limit) override;
  absl::Status UpdateEmbeddings(
      int64_t collection,
      const std::vector<std::pair<int64_t, std::vector<float>>>& embeddings)
      override;

  absl::StatusOr<std::vector<ChangeRecord>> ReadChanges(int64_t collection,
                                                        int64_t after_seq,
                                                        int limit) override;
  absl::StatusOr<int64_t> ScanEmbeddings(
      int64_t collection,
      const std::function<void(int64_t, absl::Span<const float>)>& visit)
      override;

 private:
  explicit SqliteDocumentStore(std::unique_ptr<ConnectionPool> pool)
      : pool_(std::move(pool)) {}

  std::unique_ptr<ConnectionPool> pool_;
};

}  // namespace lumen::retrieval::sqlite
