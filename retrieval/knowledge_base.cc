#include "retrieval/knowledge_base.h"

#include <cctype>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"
#include "retrieval/fusion.h"

namespace lumen::retrieval {

namespace {

// Chunks embedded per Embed() call while re-embedding a collection.
constexpr int kReembedBatch = 64;

// Vector hits fetched per wanted hit when a metadata filter may drop some.
constexpr int kFilterOverfetch = 8;

// FNV-1a over the fields that define a document's stored form.
std::string ContentHash(const DocumentInput& d) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const std::string* s :
       {&d.text, &d.title, &d.source, &d.metadata_json}) {
    for (unsigned char c : *s) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
    h ^= 0xff;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(h));
  return buf;
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

absl::Status ValidateDocument(const DocumentInput& d, size_t i) {
  if (d.id.empty() || d.id.size() > 512) {
    return absl::InvalidArgumentError(
        absl::StrCat("documents[", i, "].id must be 1-512 bytes"));
  }
  if (d.text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("documents[", i, "] (", d.id, ") has no text"));
  }
  if (!d.metadata_json.empty()) {
    const nlohmann::json meta = nlohmann::json::parse(
        d.metadata_json, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (meta.is_discarded() || !meta.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "documents[", i, "] (", d.id, ") metadata is not a JSON object"));
    }
  }
  return absl::OkStatus();
}

IndexLayout LayoutOf(const CollectionInfo& info) {
  return IndexLayout{info.dim, info.hnsw,
                     absl::StrCat(info.embedding_model.name, "/",
                                  info.embedding_model.checksum)};
}

}  // namespace

KnowledgeBase::KnowledgeBase(std::unique_ptr<DocumentStore> documents,
                             Options options)
    : documents_(std::move(documents)),
      catalog_(
          std::make_unique<VectorCatalog>(options.index_dir, documents_.get())),
      embedder_(options.embedder),
      chunking_(options.chunking) {}

absl::StatusOr<std::unique_ptr<KnowledgeBase>> KnowledgeBase::Create(
    std::unique_ptr<DocumentStore> documents, Options options) {
  std::unique_ptr<KnowledgeBase> kb(
      new KnowledgeBase(std::move(documents), std::move(options)));
  RETURN_IF_ERROR(kb->ReconcileCollections());
  KnowledgeBase* raw = kb.get();
  // Errors in these callbacks are retried at the next change, reconnect or
  // poll (see DocumentStore::Watch).
  RETURN_IF_ERROR(kb->documents_->Watch(
      [raw](int64_t collection) {
        if (collection == 0) {
          (void)raw->ReconcileCollections();
        } else {
          (void)raw->catalog_->CatchUp(collection);
        }
      },
      [raw] {
        (void)raw->ReconcileCollections();
        (void)raw->catalog_->CatchUpAll();
      }));
  return kb;
}

KnowledgeBase::~KnowledgeBase() {
  // Stop following other writers first: their callbacks use the catalog.
  documents_->Unwatch();
  (void)catalog_->SaveAll();
}

absl::Status KnowledgeBase::ReconcileCollections() {
  ASSIGN_OR_RETURN(std::vector<CollectionRecord> all,
                   documents_->ListCollections());
  std::set<int64_t> ids;
  for (const CollectionRecord& c : all) ids.insert(c.id);
  catalog_->Retain(ids);
  absl::Status status;
  for (CollectionRecord& c : all) {
    if (c.info.dim == 0 || embedder_ == nullptr) continue;
    // Collections from before models were recorded: the vectors are taken
    // to be this model's when the dimension agrees.
    if (c.info.embedding_model.name.empty() && c.info.dim == embedder_->dim()) {
      c.info.embedding_model = embedder_->model();
      status.Update(documents_->SetEmbeddingModel(c.id, c.info.embedding_model,
                                                  /*reembedding=*/false));
    }
    if (CheckVectors(c.info, "search", false).ok()) {
      status.Update(AttachIndex(c));
    }
  }
  return status;
}

absl::Status KnowledgeBase::CheckVectors(const CollectionInfo& info,
                                         const std::string& action,
                                         bool while_reembedding) const {
  if (info.dim == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection '", info.name,
        "' is keyword-only (created without --embedding-model); run `lumen "
        "collection reembed ",
        info.name, "` on a lumend with an embedding model to add vectors"));
  }
  if (embedder_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection '", info.name, "' holds vectors of embedding model ",
        info.embedding_model.Describe(), " but this lumend has no ",
        "--embedding-model: cannot ", action, " its vectors"));
  }
  const EmbeddingModelInfo mine = embedder_->model();
  if (!(info.embedding_model == mine)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection '", info.name, "' holds vectors of embedding model ",
        info.embedding_model.Describe(), " but this lumend embeds with ",
        mine.Describe(), ": cannot ", action, " its vectors; run `lumen ",
        "collection reembed ", info.name, "` or use keyword search"));
  }
  if (info.reembedding && !while_reembedding) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection '", info.name, "' is being re-embedded with ",
        mine.Describe(), "; vector search is back when that finishes (or ",
        "rerun `lumen collection reembed ", info.name, "`)"));
  }
  return absl::OkStatus();
}

absl::Status KnowledgeBase::AttachIndex(const CollectionRecord& record) {
  return catalog_->Attach(record.id, LayoutOf(record.info));
}

// --- Collections ---

absl::Status KnowledgeBase::CreateCollection(
    const std::string& name, const std::string& owner,
    const std::vector<std::string>& shared_with, const HnswOptions& hnsw) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection name '", name,
                     "' must be 1-128 characters of [A-Za-z0-9._-]"));
  }
  if (hnsw.m < 2 || hnsw.m > 128 || hnsw.ef_construction < 8 ||
      hnsw.ef_search < 1) {
    return absl::InvalidArgumentError(
        "hnsw: m in [2, 128], ef_construction >= 8, ef_search >= 1");
  }
  CollectionInfo info;
  info.name = name;
  info.owner = owner;
  info.shared_with = shared_with;
  info.hnsw = hnsw;
  if (embedder_ != nullptr) {
    info.dim = embedder_->dim();
    info.embedding_model = embedder_->model();
  }
  ASSIGN_OR_RETURN(CollectionRecord record, documents_->CreateCollection(info));
  if (record.info.dim > 0) RETURN_IF_ERROR(AttachIndex(record));
  return absl::OkStatus();
}

absl::StatusOr<CollectionInfo> KnowledgeBase::GetCollection(
    const std::string& name) const {
  ASSIGN_OR_RETURN(CollectionRecord record, documents_->GetCollection(name));
  return record.info;
}

absl::StatusOr<std::vector<CollectionInfo>> KnowledgeBase::ListCollections()
    const {
  ASSIGN_OR_RETURN(std::vector<CollectionRecord> all,
                   documents_->ListCollections());
  std::vector<CollectionInfo> out;
  out.reserve(all.size());
  for (CollectionRecord& c : all) out.push_back(std::move(c.info));
  return out;
}

absl::Status KnowledgeBase::DeleteCollection(const std::string& name) {
  ASSIGN_OR_RETURN(CollectionRecord record, documents_->GetCollection(name));
  RETURN_IF_ERROR(documents_->DeleteCollection(record.id));
  catalog_->Drop(record.id);
  return absl::OkStatus();
}

// --- Documents ---

absl::StatusOr<UpsertResult> KnowledgeBase::Upsert(
    const std::string& collection, const std::vector<DocumentInput>& docs) {
  for (size_t i = 0; i < docs.size(); ++i) {
    RETURN_IF_ERROR(ValidateDocument(docs[i], i));
  }
  ASSIGN_OR_RETURN(CollectionRecord record,
                   documents_->GetCollection(collection));
  const bool with_vectors = record.info.dim > 0;
  // New vectors are welcome while the collection is re-embedded with this
  // model.
  if (with_vectors) {
    RETURN_IF_ERROR(
        CheckVectors(record.info, "add", /*while_reembedding=*/true));
  }
  UpsertResult result;
  if (docs.empty()) return result;

  // An id given twice: the last version is the one stored (the earlier
  // ones count as unchanged).
  std::map<std::string, size_t> last;
  for (size_t i = 0; i < docs.size(); ++i) last[docs[i].id] = i;
  // Documents whose stored content is the same need no work at all.
  std::vector<std::string> ids;
  for (const auto& [id, i] : last) ids.push_back(id);
  ASSIGN_OR_RETURN(auto stored, documents_->ContentHashes(record.id, ids));
  std::vector<DocumentWrite> writes;
  for (size_t i = 0; i < docs.size(); ++i) {
    const DocumentInput& d = docs[i];
    if (last[d.id] != i) {
      ++result.unchanged;
      continue;
    }
    std::string hash = ContentHash(d);
    auto it = stored.find(d.id);
    if (it != stored.end() && it->second == hash) {
      ++result.unchanged;
      continue;
    }
    DocumentWrite w;
    w.document = d;
    w.content_hash = std::move(hash);
    writes.push_back(std::move(w));
  }

  // Chunk and embed, holding no lock: searches and other ingests go on.
  const TokenCounter count = embedder_
                                 ? TokenCounter([this](absl::string_view t) {
                                     return embedder_->CountTokens(t);
                                   })
                                 : TokenCounter(EstimateTokens);
  std::vector<std::string> texts;  // every chunk of the batch, in order
  for (DocumentWrite& w : writes) {
    for (Chunk& c : ChunkText(w.document.text, chunking_, count)) {
      if (with_vectors) texts.push_back(c.text);
      w.chunks.push_back({std::move(c.text), c.start, c.end, {}});
    }
    w.document.text.clear();  // the chunks hold it
  }
  if (with_vectors && !texts.empty()) {
    // One call for the whole batch: the embedder batches the chunks.
    ASSIGN_OR_RETURN(std::vector<std::vector<float>> vectors,
                     embedder_->Embed(texts));
    if (vectors.size() != texts.size()) {
      return absl::InternalError("embedder returned a wrong number of vectors");
    }
    size_t next = 0;
    for (DocumentWrite& w : writes) {
      for (ChunkWrite& c : w.chunks) c.embedding = std::move(vectors[next++]);
    }
  }

  // One transaction, durable on return.
  std::optional<EmbeddingModelInfo> expected;
  if (with_vectors) expected = record.info.embedding_model;
  ASSIGN_OR_RETURN(WriteResult written,
                   documents_->WriteDocuments(record.id, writes, expected));
  result.inserted = written.inserted;
  result.updated = written.updated;
  result.unchanged += written.unchanged;
  result.chunks = written.chunks;
  if (with_vectors) {
    // The write is durable whatever happens here; an index that could not
    // catch up now does at the next change.
    if (AttachIndex(record).ok()) (void)catalog_->CatchUp(record.id);
  }
  return result;
}

absl::StatusOr<int> KnowledgeBase::DeleteDocuments(
    const std::string& collection, const std::vector<std::string>& ids) {
  ASSIGN_OR_RETURN(CollectionRecord record,
                   documents_->GetCollection(collection));
  ASSIGN_OR_RETURN(int deleted, documents_->DeleteDocuments(record.id, ids));
  if (deleted > 0) (void)catalog_->CatchUp(record.id);
  return deleted;
}

int64_t KnowledgeBase::TotalDocuments() const {
  absl::StatusOr<int64_t> n = documents_->TotalDocuments();
  if (n.ok()) last_total_documents_.store(*n);
  return last_total_documents_.load();
}

// --- Search ---

absl::StatusOr<std::vector<ChunkHit>> KnowledgeBase::VectorSearch(
    const CollectionRecord& record, const SearchRequest& request, int k) {
  // The query is embedded without any lock held.
  ASSIGN_OR_RETURN(std::vector<std::vector<float>> query,
                   embedder_->Embed({request.query}));
  if (query.size() != 1 ||
      static_cast<int>(query[0].size()) != record.info.dim) {
    return absl::InternalError("embedder returned a malformed query vector");
  }
  RETURN_IF_ERROR(AttachIndex(record));
  // A metadata filter drops hits after the graph search: over-fetch, and
  // fetch more while the graph still has them and too few pass.
  int want = request.filter.empty() ? k : k * kFilterOverfetch;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<VectorHit> found,
                     catalog_->Search(record.id, query[0].data(), want));
    std::vector<int64_t> ids;
    std::map<int64_t, double> scores;
    for (const VectorHit& v : found) {
      ids.push_back(v.label);
      scores[v.label] = v.score;
    }
    ASSIGN_OR_RETURN(std::vector<ChunkHit> hits,
                     documents_->LoadChunks(record.id, ids, request.filter));
    if (static_cast<int>(hits.size()) >= k ||
        static_cast<int>(found.size()) < want || want >= 4096) {
      for (ChunkHit& h : hits) {
        h.score = scores[h.chunk_id];
        h.collection = record.info.name;
      }
      if (static_cast<int>(hits.size()) > k) hits.resize(k);
      return hits;
    }
    want *= 4;
  }
}

absl::StatusOr<std::vector<ChunkHit>> KnowledgeBase::Search(
    const std::string& collection, const SearchRequest& r) {
  if (r.top_k <= 0 || r.top_k > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in [1, 100] (got ", r.top_k, ")"));
  }
  ASSIGN_OR_RETURN(CollectionRecord record,
                   documents_->GetCollection(collection));
  SearchMode mode = r.mode;
  if (mode != SearchMode::kKeyword) {
    absl::Status vectors = CheckVectors(record.info, "search", false);
    if (!vectors.ok()) {
      // A hybrid search on a collection that never had vectors (or on a
      // lumend without a model) is a keyword search; vectors of another
      // model are an error the user must see.
      const bool no_vectors_here = record.info.dim == 0 || embedder_ == nullptr;
      if (mode == SearchMode::kVector || !no_vectors_here) return vectors;
      mode = SearchMode::kKeyword;
    }
  }
  std::vector<ChunkHit> hits;
  if (mode == SearchMode::kKeyword) {
    ASSIGN_OR_RETURN(
        hits, documents_->KeywordSearch(record.id, r.query, r.filter, r.top_k));
    for (ChunkHit& h : hits) h.collection = record.info.name;
  } else if (mode == SearchMode::kVector) {
    ASSIGN_OR_RETURN(hits, VectorSearch(record, r, r.top_k));
  } else {
    // Each list deeper than top_k, so fusion can promote chunks that rank
    // well in both.
    const int depth = r.top_k * 4;
    ASSIGN_OR_RETURN(std::vector<ChunkHit> vec, VectorSearch(record, r, depth));
    ASSIGN_OR_RETURN(
        std::vector<ChunkHit> kw,
        documents_->KeywordSearch(record.id, r.query, r.filter, depth));
    for (ChunkHit& h : kw) h.collection = record.info.name;
    hits = FuseReciprocalRank({vec, kw}, r.top_k);
  }
  std::vector<ChunkHit> out;
  for (ChunkHit& h : hits) {
    if (h.score >= r.min_score) out.push_back(std::move(h));
  }
  return out;
}

// --- Re-embedding ---

absl::Status KnowledgeBase::Reembed(
    const std::string& collection,
    const std::function<bool(const ReembedProgress&)>& progress) {
  if (embedder_ == nullptr) {
    return absl::FailedPreconditionError(
        "this lumend has no --embedding-model to re-embed with");
  }
  ASSIGN_OR_RETURN(CollectionRecord record,
                   documents_->GetCollection(collection));
  const EmbeddingModelInfo model = embedder_->model();
  // The collection is this model's from now on: writers with another model
  // are refused, and vector search waits until every chunk is re-embedded.
  RETURN_IF_ERROR(
      documents_->SetEmbeddingModel(record.id, model, /*reembedding=*/true));
  ReembedProgress p{0, record.info.chunks};
  int64_t after = 0;
  while (true) {
    ASSIGN_OR_RETURN(auto batch,
                     documents_->ChunkTexts(record.id, after, kReembedBatch));
    if (batch.empty()) break;
    std::vector<std::string> texts;
    for (auto& [id, text] : batch) texts.push_back(std::move(text));
    ASSIGN_OR_RETURN(std::vector<std::vector<float>> vectors,
                     embedder_->Embed(texts));
    if (vectors.size() != batch.size()) {
      return absl::InternalError("embedder returned a wrong number of vectors");
    }
    std::vector<std::pair<int64_t, std::vector<float>>> updates;
    for (size_t i = 0; i < batch.size(); ++i) {
      updates.push_back({batch[i].first, std::move(vectors[i])});
    }
    RETURN_IF_ERROR(documents_->UpdateEmbeddings(record.id, updates));
    after = batch.back().first;
    p.done += static_cast<int64_t>(batch.size());
    p.total = std::max(p.total, p.done);
    if (progress && !progress(p)) {
      return absl::CancelledError(absl::StrCat("re-embedding of '", collection,
                                               "' stopped after ", p.done,
                                               " of ", p.total, " chunks"));
    }
  }
  RETURN_IF_ERROR(
      documents_->SetEmbeddingModel(record.id, model, /*reembedding=*/false));
  ASSIGN_OR_RETURN(record, documents_->GetCollection(collection));
  return AttachIndex(record);
}

absl::StatusOr<size_t> KnowledgeBase::IndexTombstones(
    const std::string& collection) const {
  ASSIGN_OR_RETURN(CollectionRecord record,
                   documents_->GetCollection(collection));
  return catalog_->Tombstones(record.id);
}

absl::StatusOr<int64_t> KnowledgeBase::AppliedSequence(
    const std::string& collection) const {
  ASSIGN_OR_RETURN(CollectionRecord record,
                   documents_->GetCollection(collection));
  return catalog_->AppliedSeq(record.id);
}

absl::Status KnowledgeBase::AwaitApplied(
    const std::string& collection, int64_t seq,
    std::chrono::steady_clock::time_point deadline) const {
  ASSIGN_OR_RETURN(CollectionRecord record,
                   documents_->GetCollection(collection));
  if (!catalog_->AwaitApplied(record.id, seq, deadline)) {
    return absl::DeadlineExceededError(
        absl::StrCat("collection '", collection, "' has applied change ",
                     catalog_->AppliedSeq(record.id), ", not yet ", seq));
  }
  return absl::OkStatus();
}

absl::Status KnowledgeBase::SaveIndexes() { return catalog_->SaveAll(); }

}  // namespace lumen::retrieval
