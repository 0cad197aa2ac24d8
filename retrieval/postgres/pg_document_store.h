#pragma once
// PgDocumentStore: the PostgreSQL backend, shared by several lumend
// replicas. PostgreSQL is the source of truth for collections, documents,
// chunks, embeddings (bytea, float32) and permissions; each replica derives
// its HNSW indexes from the change log (VectorCatalog) and follows other
// replicas' writes through LISTEN/NOTIFY (PgChangeListener).
//
// Change sequence numbers are per collection: a writer locks the
// collection's row (SELECT ... FOR UPDATE) before numbering its changes and
// holds the lock until it commits, so within a collection the numbers
// commit in order and a replica that has applied up to S never later sees a
// change below S. Writers of different collections do not wait for each
// other.
//
// Keyword search: see pg_schema.cc (terms from KeywordTerms in a tsvector,
// GIN index, ts_rank), independent of the database's locale.
//
// Threads: thread-safe; each call takes a pooled connection for its SQL.
// Errors: Unavailable while the database cannot be reached (recovering by
// itself when it is back), see pg_connection.h.

#include <memory>
#include <string>

#include "retrieval/document_store.h"
#include "retrieval/postgres/pg_change_listener.h"
#include "retrieval/postgres/pg_connection.h"

namespace lumen::retrieval::postgres {

class PgDocumentStore final : public DocumentStore {
 public:
  // Connects to `uri`, creates or migrates the schema. Unavailable when the
  // database cannot be reached, FailedPrecondition for a newer schema.
  static absl::StatusOr<std::unique_ptr<PgDocumentStore>> Open(
      const std::string& uri);
  ~PgDocumentStore() override;

  // A UUID created with the schema: replicas keep their derived indexes
  // per store, so pointing a data directory at another database starts
  // afresh.
  const std::string& store_id() const { return store_id_; }

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

  absl::Status Watch(std::function<void(int64_t)> on_change,
                     std::function<void()> on_reconnect) override;
  void Unwatch() override;

 private:
  explicit PgDocumentStore(const std::string& uri) : pool_(uri) {}

  ConnectionPool pool_;
  std::string store_id_;
  std::unique_ptr<PgChangeListener> listener_;
};

}  // namespace lumen::retrieval::postgres
