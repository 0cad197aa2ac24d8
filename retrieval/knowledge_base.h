#pragma once
// KnowledgeBase: the KnowledgeStore, built from backend-independent parts
// over a backend's DocumentStore (SQLite or PostgreSQL):
//   - validation, content hashing and chunking of documents;
//   - embedding, always outside any lock (an ingest never stalls a search);
//   - the vector catalog (one HNSW index per collection, derived from the
//     backend's change log, a lock per collection);
//   - keyword search from the backend, reciprocal rank fusion for hybrid;
//   - the embedding model recorded per collection: vectors from another
//     model are refused (FailedPrecondition naming both) until Reembed.
// Thread-safe (see KnowledgeStore).

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "retrieval/document_store.h"
#include "retrieval/knowledge_store.h"
#include "retrieval/vector_catalog.h"

namespace lumen::retrieval {

class KnowledgeBase final : public KnowledgeStore {
 public:
  struct Options {
    Embedder* embedder = nullptr;  // null: keyword-only; must outlive this
    ChunkerOptions chunking;
    // Where vector indexes are saved between runs; empty: never saved
    // (rebuilt from the database at every start).
    std::string index_dir;
  };
  // Takes the backend, attaches every vector collection of this embedding
  // model (loading or rebuilding its index, catching up the change log) and
  // starts following other writers of the same database.
  static absl::StatusOr<std::unique_ptr<KnowledgeBase>> Create(
      std::unique_ptr<DocumentStore> documents, Options options);
  ~KnowledgeBase() override;  // stops following, saves the indexes

  bool has_embedder() const override { return embedder_ != nullptr; }
  absl::Status CreateCollection(const std::string& name,
                                const std::string& owner,
                                const std::vector<std::string>& shared_with,
                                const HnswOptions& hnsw) override;
  absl::StatusOr<CollectionInfo> GetCollection(
      const std::string& name) const override;
  absl::StatusOr<std::vector<CollectionInfo>> ListCollections() const override;
  absl::Status DeleteCollection(const std::string& name) override;
  absl::StatusOr<UpsertResult> Upsert(
      const std::string& collection,
      const std::vector<DocumentInput>& documents) override;
  absl::StatusOr<int> DeleteDocuments(
      const std::string& collection,
      const std::vector<std::string>& ids) override;
  absl::StatusOr<std::vector<ChunkHit>> Search(
      const std::string& collection, const SearchRequest& request) override;
  absl::Status Reembed(
      const std::string& collection,
      const std::function<bool(const ReembedProgress&)>& progress) override;
  int64_t TotalDocuments() const override;
  absl::StatusOr<size_t> IndexTombstones(
      const std::string& collection) const override;
  absl::Status SaveIndexes() override;

  // The change sequence number the collection's vector index has applied
  // (-1 when it has none yet). For tests and replication checks.
  absl::StatusOr<int64_t> AppliedSequence(const std::string& collection) const;
  // Waits until the collection's vector index has applied `seq` (e.g. the
  // AppliedSequence another replica reported after a write): OK, or
  // DeadlineExceeded.
  absl::Status AwaitApplied(
      const std::string& collection, int64_t seq,
      std::chrono::steady_clock::time_point deadline) const;

 private:
  KnowledgeBase(std::unique_ptr<DocumentStore> documents, Options options);
  // FailedPrecondition unless this store may add or search vectors of the
  // collection (see the class comment); `action` words the message.
  // `while_reembedding`: allowed while a re-embedding is under way.
  absl::Status CheckVectors(const CollectionInfo& info,
                            const std::string& action,
                            bool while_reembedding) const;
  // The collection's vector index, attached (built) on first use.
  absl::Status AttachIndex(const CollectionRecord& record);
  absl::StatusOr<std::vector<ChunkHit>> VectorSearch(
      const CollectionRecord& record, const SearchRequest& request, int k);
  // Another writer created, deleted or re-embedded collections: forget the
  // indexes of deleted ones, attach the others (at start, after a reconnect
  // and on such changes), so a replica's indexes are warm and followed.
  absl::Status ReconcileCollections();

  std::unique_ptr<DocumentStore> documents_;
  std::unique_ptr<VectorCatalog> catalog_;
  Embedder* const embedder_;
  const ChunkerOptions chunking_;
  mutable std::atomic<int64_t> last_total_documents_{0};
};

}  // namespace lumen::retrieval
