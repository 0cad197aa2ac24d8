#pragma once
// lumen.v1.Knowledge: collections, ingestion and search over the knowledge
// store, with per-tenant permissions. Also the RAG retrieval used by
// Generate.

#include "lumen/v1/knowledge.grpc.pb.h"
#include "retrieval/knowledge_store.h"
#include "server/auth.h"

namespace lumen::server {

class Metrics;

// Retrieval for a RAG request: searches every named collection the caller
// may read, merges by score, keeps top_k. PERMISSION_DENIED (same message
// whether or not the collection exists) for a forbidden one.
absl::StatusOr<std::vector<retrieval::ChunkHit>> RetrieveForRag(
    retrieval::KnowledgeStore* store, const Principal& principal,
    const std::vector<std::string>& collections,
    const retrieval::SearchRequest& request);

void ToProto(const retrieval::ChunkHit& hit, lumen::v1::Citation* out);

class KnowledgeService final : public lumen::v1::Knowledge::CallbackService {
 public:
  KnowledgeService(retrieval::KnowledgeStore* store, const Authenticator* auth,
                   Metrics* metrics)
      : store_(store), auth_(auth), metrics_(metrics) {}

  grpc::ServerUnaryReactor* CreateCollection(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::CreateCollectionRequest* req,
      lumen::v1::CollectionInfo* resp) override;
  grpc::ServerUnaryReactor* ListCollections(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::ListCollectionsRequest* req,
      lumen::v1::ListCollectionsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteCollection(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::DeleteCollectionRequest* req,
      lumen::v1::DeleteCollectionResponse* resp) override;
  grpc::ServerUnaryReactor* UpsertDocuments(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::UpsertDocumentsRequest* req,
      lumen::v1::UpsertDocumentsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteDocuments(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::DeleteDocumentsRequest* req,
      lumen::v1::DeleteDocumentsResponse* resp) override;
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx,
                                   const lumen::v1::SearchRequest* req,
                                   lumen::v1::SearchResponse* resp) override;
  // Runs on a thread of its own (not the callback thread) and streams
  // progress.
  grpc::ServerWriteReactor<lumen::v1::ReembedProgress>* ReembedCollection(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::ReembedCollectionRequest* req) override;

 private:
  // The collection if the caller may read (or write) it.
  absl::StatusOr<retrieval::CollectionInfo> Authorized(const Principal& p,
                                                       const std::string& name,
                                                       bool write) const;
  void UpdateDocumentGauge() const;

  retrieval::KnowledgeStore* store_;
  const Authenticator* auth_;
  Metrics* metrics_;
};

}  // namespace lumen::server
