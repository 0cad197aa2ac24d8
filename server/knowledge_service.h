#pragma once
// lumen.v1.Knowledge: collections, ingestion and search over the knowledge
// store, with per-tenant permissions (retrieval/access.h). Every call's store
// work runs on the server's executor: it blocks (SQL, embedding), and
// callback threads must not.

#include "lumen/v1/knowledge.grpc.pb.h"
#include "retrieval/knowledge_store.h"
#include "server/auth.h"
#include "server/executor.h"
#include "server/parse_checked_service.h"

namespace lumen::server {

class Metrics;

void ToProto(const retrieval::ChunkHit& hit, lumen::v1::Citation* out);

class KnowledgeService final
    : public ParseCheckedService<lumen::v1::Knowledge> {
 public:
  KnowledgeService(retrieval::KnowledgeStore* store, const Authenticator* auth,
                   Executor* executor, Metrics* metrics);

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
  // Runs on a thread the reactor owns (a long job must not hold an executor
  // thread) and streams progress.
  grpc::ServerWriteReactor<lumen::v1::ReembedProgress>* ReembedCollection(
      grpc::CallbackServerContext* ctx,
      const lumen::v1::ReembedCollectionRequest* req) override;

 private:
  void UpdateDocumentGauge() const;

  retrieval::KnowledgeStore* store_;
  const Authenticator* auth_;
  Executor* executor_;
  Metrics* metrics_;
};

}  // namespace lumen::server
