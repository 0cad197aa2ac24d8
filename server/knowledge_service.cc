#include "server/knowledge_service.h"

#include <chrono>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "retrieval/access.h"
#include "server/metrics.h"
#include "server/reply.h"
#include "server/status_util.h"

namespace lumen::server {

namespace {

retrieval::SearchMode ModeOf(lumen::v1::SearchMode m) {
  switch (m) {
    case lumen::v1::SEARCH_MODE_VECTOR:
      return retrieval::SearchMode::kVector;
    case lumen::v1::SEARCH_MODE_KEYWORD:
      return retrieval::SearchMode::kKeyword;
    default:
      return retrieval::SearchMode::kHybrid;
  }
}

void FillInfo(const retrieval::CollectionInfo& c,
              lumen::v1::CollectionInfo* out) {
  out->set_name(c.name);
  out->set_owner(c.owner);
  for (const std::string& t : c.shared_with) out->add_shared_with(t);
  out->set_vector_search(c.dim > 0);
  out->set_dim(c.dim);
  out->set_documents(c.documents);
  out->set_chunks(c.chunks);
  out->mutable_hnsw()->set_m(c.hnsw.m);
  out->mutable_hnsw()->set_ef_construction(c.hnsw.ef_construction);
  out->mutable_hnsw()->set_ef_search(c.hnsw.ef_search);
  out->mutable_hnsw()->set_metric(c.hnsw.cosine ? "cosine" : "ip");
  out->set_embedding_model(c.embedding_model.name);
  out->set_reembedding(c.reembedding);
}

// A streaming call refused before it started.
class FailedReembed final
    : public grpc::ServerWriteReactor<lumen::v1::ReembedProgress> {
 public:
  explicit FailedReembed(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// Streams the progress of KnowledgeStore::Reembed, which runs on a thread
// this reactor owns (joined in OnDone). One write in flight; progress that
// arrives meanwhile replaces the pending message.
class ReembedReactor final
    : public grpc::ServerWriteReactor<lumen::v1::ReembedProgress> {
 public:
  ReembedReactor(retrieval::KnowledgeStore* store, Principal principal,
                 std::string collection)
      : store_(store),
        principal_(std::move(principal)),
        collection_(std::move(collection)) {
    worker_ = std::thread([this] { Run(); });
  }
  // The client left or the server's shutdown grace ran out: the worker
  // stops after its current batch, so OnDone's join is short.
  void OnCancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }
  void OnWriteDone(bool) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    Pump();
  }
  void OnDone() override {
    worker_.join();
    delete this;
  }

 private:
  void Run() {
    absl::Status s = retrieval::AuthorizeCollection(*store_, principal_,
                                                    collection_, /*write=*/true)
                         .status();
    if (s.ok()) s = Reembed();
    std::lock_guard lock(mu_);
    status_ = s;
    done_ = true;
    Pump();
  }
  absl::Status Reembed() {
    return store_->Reembed(collection_,
                           [this](const retrieval::ReembedProgress& p) {
                             std::lock_guard lock(mu_);
                             pending_.set_done(p.done);
                             pending_.set_total(p.total);
                             has_pending_ = true;
                             Pump();
                             return !cancelled_;
                           });
  }
  // Starts the next write, or finishes once the work is done and written.
  void Pump() {
    if (writing_ || finished_) return;
    if (has_pending_) {
      message_ = pending_;
      has_pending_ = false;
      writing_ = true;
      StartWrite(&message_);
    } else if (done_) {
      finished_ = true;
      Finish(ToGrpc(status_));
    }
  }

  retrieval::KnowledgeStore* const store_;
  const Principal principal_;
  const std::string collection_;
  std::mutex mu_;
  lumen::v1::ReembedProgress pending_, message_;
  bool has_pending_ = false, writing_ = false, done_ = false, finished_ = false;
  bool cancelled_ = false;
  absl::Status status_;
  std::thread worker_;
};

}  // namespace

KnowledgeService::KnowledgeService(retrieval::KnowledgeStore* store,
                                   const Authenticator* auth,
                                   Executor* executor, Metrics* metrics)
    : store_(store), auth_(auth), executor_(executor), metrics_(metrics) {
  CheckParsing("CreateCollection", &KnowledgeService::CreateCollection);
  CheckParsing("ListCollections", &KnowledgeService::ListCollections);
  CheckParsing("DeleteCollection", &KnowledgeService::DeleteCollection);
  CheckParsing("UpsertDocuments", &KnowledgeService::UpsertDocuments);
  CheckParsing("DeleteDocuments", &KnowledgeService::DeleteDocuments);
  CheckParsing("Search", &KnowledgeService::Search);
  CheckParsing("ReembedCollection", &KnowledgeService::ReembedCollection);
  CheckedEveryMethod();
}

void ToProto(const retrieval::ChunkHit& h, lumen::v1::Citation* out) {
  out->set_start(h.start);
  out->set_end(h.end);
  out->set_collection(h.collection);
  out->set_document_id(h.document_id);
  out->set_chunk_id(h.chunk_id);
  out->set_score(h.score);
  out->set_source(h.source);
  out->set_title(h.title);
  out->set_metadata_json(h.metadata_json);
  out->set_text(h.text);
}

void KnowledgeService::UpdateDocumentGauge() const {
  if (metrics_) metrics_->SetRagDocuments(store_->TotalDocuments());
}

grpc::ServerUnaryReactor* KnowledgeService::CreateCollection(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::CreateCollectionRequest* req,
    lumen::v1::CollectionInfo* resp) {
  auto p = auth_->Authenticate(ctx);
  if (!p.ok()) return Reply(ctx, p.status());
  std::string owner = req->owner().empty() ? p->tenant : req->owner();
  if (owner != p->tenant && !p->admin) {
    return Reply(ctx, absl::PermissionDeniedError(
                          "only admins create collections for other tenants"));
  }
  retrieval::HnswOptions h;
  if (req->hnsw().m()) h.m = req->hnsw().m();
  if (req->hnsw().ef_construction())
    h.ef_construction = req->hnsw().ef_construction();
  if (req->hnsw().ef_search()) h.ef_search = req->hnsw().ef_search();
  if (req->hnsw().metric() == "ip") {
    h.cosine = false;
  } else if (!req->hnsw().metric().empty() &&
             req->hnsw().metric() != "cosine") {
    return Reply(ctx, absl::InvalidArgumentError(
                          absl::StrCat("hnsw.metric '", req->hnsw().metric(),
                                       "' is not cosine or ip")));
  }
  return ReplyLater(
      ctx, executor_, [this, p = *p, owner, h, req, resp]() -> absl::Status {
        std::vector<std::string> shared(req->shared_with().begin(),
                                        req->shared_with().end());
        if (absl::Status s =
                store_->CreateCollection(req->name(), owner, shared, h);
            !s.ok()) {
          // Without rights to it, "already exists" would reveal another
          // tenant's collection.
          if (s.code() == absl::StatusCode::kAlreadyExists && !p.admin) {
            auto info = store_->GetCollection(req->name());
            if (info.ok() && !retrieval::CanRead(p, *info))
              return retrieval::Forbidden(req->name());
          }
          return s;
        }
        auto info = store_->GetCollection(req->name());
        if (info.ok()) FillInfo(*info, resp);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KnowledgeService::ListCollections(
    grpc::CallbackServerContext* ctx, const lumen::v1::ListCollectionsRequest*,
    lumen::v1::ListCollectionsResponse* resp) {
  auto p = auth_->Authenticate(ctx);
  if (!p.ok()) return Reply(ctx, p.status());
  return ReplyLater(ctx, executor_, [this, p = *p, resp]() -> absl::Status {
    auto all = store_->ListCollections();
    if (!all.ok()) return all.status();
    for (const auto& c : *all) {
      if (retrieval::CanRead(p, c)) FillInfo(c, resp->add_collections());
    }
    resp->set_embedding_model(store_->has_embedder());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* KnowledgeService::DeleteCollection(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::DeleteCollectionRequest* req,
    lumen::v1::DeleteCollectionResponse*) {
  auto p = auth_->Authenticate(ctx);
  if (!p.ok()) return Reply(ctx, p.status());
  return ReplyLater(ctx, executor_, [this, p = *p, req]() -> absl::Status {
    auto info = retrieval::AuthorizeCollection(*store_, p, req->name(),
                                               /*write=*/true);
    if (!info.ok()) return info.status();
    absl::Status s = store_->DeleteCollection(req->name());
    UpdateDocumentGauge();
    return s;
  });
}

grpc::ServerUnaryReactor* KnowledgeService::UpsertDocuments(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::UpsertDocumentsRequest* req,
    lumen::v1::UpsertDocumentsResponse* resp) {
  auto p = auth_->Authenticate(ctx);
  if (!p.ok()) return Reply(ctx, p.status());
  // Chunking, embedding and the durable commit all block.
  return ReplyLater(
      ctx, executor_, [this, p = *p, req, resp]() -> absl::Status {
        auto info =
            retrieval::AuthorizeCollection(*store_, p, req->collection(),
                                           /*write=*/true);
        if (!info.ok()) return info.status();
        std::vector<retrieval::DocumentInput> docs;
        for (const auto& d : req->documents()) {
          docs.push_back(
              {d.id(), d.source(), d.title(), d.metadata_json(), d.text()});
        }
        auto r = store_->Upsert(req->collection(), docs);
        if (!r.ok()) return r.status();
        resp->set_inserted(r->inserted);
        resp->set_updated(r->updated);
        resp->set_unchanged(r->unchanged);
        resp->set_chunks(r->chunks);
        UpdateDocumentGauge();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KnowledgeService::DeleteDocuments(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::DeleteDocumentsRequest* req,
    lumen::v1::DeleteDocumentsResponse* resp) {
  auto p = auth_->Authenticate(ctx);
  if (!p.ok()) return Reply(ctx, p.status());
  return ReplyLater(
      ctx, executor_, [this, p = *p, req, resp]() -> absl::Status {
        auto info =
            retrieval::AuthorizeCollection(*store_, p, req->collection(),
                                           /*write=*/true);
        if (!info.ok()) return info.status();
        auto n = store_->DeleteDocuments(
            req->collection(),
            std::vector<std::string>(req->ids().begin(), req->ids().end()));
        if (!n.ok()) return n.status();
        resp->set_deleted(*n);
        UpdateDocumentGauge();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KnowledgeService::Search(
    grpc::CallbackServerContext* ctx, const lumen::v1::SearchRequest* req,
    lumen::v1::SearchResponse* resp) {
  auto p = auth_->Authenticate(ctx);
  if (!p.ok()) return Reply(ctx, p.status());
  if (req->top_k() > 100) {
    return Reply(ctx,
                 absl::InvalidArgumentError(absl::StrCat(
                     "top_k must be at most 100 (got ", req->top_k(), ")")));
  }
  // Vector search embeds the query: off the callback thread.
  return ReplyLater(
      ctx, executor_, [this, p = *p, req, resp]() -> absl::Status {
        auto info =
            retrieval::AuthorizeCollection(*store_, p, req->collection(),
                                           /*write=*/false);
        if (!info.ok()) return info.status();
        retrieval::SearchRequest r;
        r.query = req->query();
        r.top_k = req->top_k() ? static_cast<int>(req->top_k()) : 5;
        r.min_score = req->min_score();
        r.filter = std::map<std::string, std::string>(req->filter().begin(),
                                                      req->filter().end());
        r.mode = ModeOf(req->mode());
        const auto t0 = std::chrono::steady_clock::now();
        auto hits = store_->Search(req->collection(), r);
        if (!hits.ok()) return hits.status();
        for (const auto& h : *hits) ToProto(h, resp->add_hits());
        resp->set_seconds(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                .count());
        return absl::OkStatus();
      });
}

grpc::ServerWriteReactor<lumen::v1::ReembedProgress>*
KnowledgeService::ReembedCollection(
    grpc::CallbackServerContext* ctx,
    const lumen::v1::ReembedCollectionRequest* req) {
  auto p = auth_->Authenticate(ctx);
  if (!p.ok()) return new FailedReembed(ToGrpc(p.status()));
  return new ReembedReactor(store_, *p, req->name());
}

}  // namespace lumen::server
