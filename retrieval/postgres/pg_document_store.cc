#include "retrieval/postgres/pg_document_store.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"
#include "retrieval/postgres/pg_change_log.h"
#include "retrieval/postgres/pg_keywords.h"
#include "retrieval/postgres/pg_schema.h"

namespace lumen::retrieval::postgres {

namespace {

// Rows per multi-row INSERT (PostgreSQL takes at most 65535 parameters).
constexpr size_t kRowsPerInsert = 200;
// Embeddings per page while scanning a collection.
constexpr int kScanPage = 1024;

constexpr const char* kCollectionColumns =
    "id, name, owner, array_to_json(shared_with)::text, dim, hnsw_m,"
    " ef_construction, ef_search, metric, model_name, model_checksum,"
    " reembedding, doc_count, chunk_count";

CollectionRecord ReadCollection(const Result& r, int row) {
  CollectionRecord rec;
  rec.id = r.Int(row, 0);
  CollectionInfo& c = rec.info;
  c.name = std::string(r.Text(row, 1));
  c.owner = std::string(r.Text(row, 2));
  const nlohmann::json shared = nlohmann::json::parse(
      r.Text(row, 3), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (shared.is_array()) {
    for (const auto& t : shared) {
      if (t.is_string()) c.shared_with.push_back(t.get<std::string>());
    }
  }
  c.dim = static_cast<int>(r.Int(row, 4));
  c.hnsw = {static_cast<int>(r.Int(row, 5)), static_cast<int>(r.Int(row, 6)),
            static_cast<int>(r.Int(row, 7)), r.Text(row, 8) != "ip"};
  c.embedding_model = {std::string(r.Text(row, 9)), c.dim,
                       std::string(r.Text(row, 10))};
  c.reembedding = r.Bool(row, 11);
  c.documents = r.Int(row, 12);
  c.chunks = r.Int(row, 13);
  return rec;
}

std::string FilterJson(const MetadataFilter& filter) {
  return nlohmann::json(filter).dump(-1, ' ', false,
                                     nlohmann::json::error_handler_t::replace);
}

// Each field of the JSON object parameter $n equals the document's
// metadata field (as text).
std::string FilterClause(int n) {
  return absl::StrCat(
      "NOT EXISTS (SELECT 1 FROM jsonb_each_text($", n,
      "::jsonb) f WHERE (d.metadata::jsonb ->> f.key) IS DISTINCT FROM "
      "f.value)");
}

constexpr const char* kHitColumns =
    "c.id, c.doc_id, c.text, c.start_byte, c.end_byte, d.source, d.title,"
    " d.metadata";

ChunkHit ReadHit(const Result& r, int row) {
  ChunkHit h;
  h.chunk_id = r.Int(row, 0);
  h.document_id = std::string(r.Text(row, 1));
  h.text = std::string(r.Text(row, 2));
  h.start = r.Int(row, 3);
  h.end = r.Int(row, 4);
  h.source = std::string(r.Text(row, 5));
  h.title = std::string(r.Text(row, 6));
  h.metadata_json = std::string(r.Text(row, 7));
  return h;
}

// The stored content hashes of those of `ids` that exist.
absl::StatusOr<std::map<std::string, std::string>> StoredHashes(
    Connection* db, int64_t collection, const std::vector<std::string>& ids) {
  ASSIGN_OR_RETURN(Result r,
                   db->Query("SELECT doc_id, content_hash FROM documents WHERE "
                             "collection_id = $1 AND doc_id = ANY($2::text[])",
                             Params().Add(collection).Add(ArrayLiteral(ids))));
  std::map<std::string, std::string> out;
  for (int i = 0; i < r.rows(); ++i)
    out[std::string(r.Text(i, 0))] = std::string(r.Text(i, 1));
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgDocumentStore>> PgDocumentStore::Open(
    const std::string& uri) {
  std::unique_ptr<PgDocumentStore> s(new PgDocumentStore(uri));
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, s->pool_.Acquire());
  ASSIGN_OR_RETURN(s->store_id_, MigrateSchema(db.get()));
  return s;
}

PgDocumentStore::~PgDocumentStore() { Unwatch(); }

absl::Status PgDocumentStore::Watch(std::function<void(int64_t)> on_change,
                                    std::function<void()> on_reconnect) {
  Unwatch();
  listener_ = std::make_unique<PgChangeListener>(
      pool_.uri(), std::move(on_change), std::move(on_reconnect));
  return listener_->Start();
}

void PgDocumentStore::Unwatch() {
  if (listener_) listener_->Stop();
  listener_.reset();
}

// --- Collections ---

absl::StatusOr<CollectionRecord> PgDocumentStore::CreateCollection(
    const CollectionInfo& info) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(
      Result r,
      db->Query(
          "WITH ins AS (INSERT INTO collections(name, owner, shared_with, "
          "dim, hnsw_m, ef_construction, ef_search, metric, model_name, "
          "model_checksum) VALUES($1, $2, $3::text[], $4, $5, $6, $7, $8, $9, "
          "$10) ON CONFLICT (name) DO NOTHING RETURNING id) SELECT id, "
          "pg_notify($11, '0') FROM ins",
          Params()
              .Add(info.name)
              .Add(info.owner)
              .Add(ArrayLiteral(info.shared_with))
              .Add(int64_t{info.dim})
              .Add(int64_t{info.hnsw.m})
              .Add(int64_t{info.hnsw.ef_construction})
              .Add(int64_t{info.hnsw.ef_search})
              .Add(info.hnsw.cosine ? "cosine" : "ip")
              .Add(info.embedding_model.name)
              .Add(info.embedding_model.checksum)
              .Add(kChangeChannel)));
  if (r.rows() == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection '", info.name, "' already exists"));
  }
  CollectionRecord record{r.Int(0, 0), info};
  record.info.documents = record.info.chunks = 0;
  record.info.reembedding = false;
  return record;
}

absl::StatusOr<CollectionRecord> PgDocumentStore::GetCollection(
    const std::string& name) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(Result r,
                   db->Query(absl::StrCat("SELECT ", kCollectionColumns,
                                          " FROM collections WHERE "
                                          "name = $1"),
                             Params().Add(name)));
  if (r.rows() == 0) {
    return absl::NotFoundError(
        absl::StrCat("collection '", name, "' not found"));
  }
  return ReadCollection(r, 0);
}

absl::StatusOr<std::vector<CollectionRecord>>
PgDocumentStore::ListCollections() {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  // Byte order, as SQLite sorts, whatever the database's collation.
  ASSIGN_OR_RETURN(Result r,
                   db->Query(absl::StrCat("SELECT ", kCollectionColumns,
                                          " FROM collections ORDER BY name "
                                          "COLLATE \"C\"")));
  std::vector<CollectionRecord> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(ReadCollection(r, i));
  return out;
}

absl::Status PgDocumentStore::DeleteCollection(int64_t collection) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  // Documents, chunks and the change log go with it (ON DELETE CASCADE).
  return db
      ->Query(
          "WITH del AS (DELETE FROM collections WHERE id = $1 RETURNING "
          "id) SELECT pg_notify($2, '0') FROM del",
          Params().Add(collection).Add(kChangeChannel))
      .status();
}

absl::Status PgDocumentStore::SetEmbeddingModel(int64_t collection,
                                                const EmbeddingModelInfo& model,
                                                bool reembedding) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(
      Result r,
      db->Query("WITH up AS (UPDATE collections SET dim = $2, model_name = "
                "$3, model_checksum = $4, reembedding = $5 WHERE id = $1 "
                "RETURNING id) SELECT pg_notify($6, '0') FROM up",
                Params()
                    .Add(collection)
                    .Add(int64_t{model.dim})
                    .Add(model.name)
                    .Add(model.checksum)
                    .Add(reembedding ? "true" : "false")
                    .Add(kChangeChannel)));
  if (r.rows() == 0) return absl::NotFoundError("collection not found");
  return absl::OkStatus();
}

// --- Documents ---

absl::StatusOr<std::map<std::string, std::string>>
PgDocumentStore::ContentHashes(int64_t collection,
                               const std::vector<std::string>& ids) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  return StoredHashes(db.get(), collection, ids);
}

absl::StatusOr<WriteResult> PgDocumentStore::WriteDocuments(
    int64_t collection, const std::vector<DocumentWrite>& documents,
    const std::optional<EmbeddingModelInfo>& expected_model) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db.get()));
  ASSIGN_OR_RETURN(const int64_t seq,
                   LockCollection(db.get(), collection, expected_model));
  std::vector<std::string> ids;
  for (const DocumentWrite& w : documents) ids.push_back(w.document.id);
  ASSIGN_OR_RETURN(auto stored, StoredHashes(db.get(), collection, ids));
  WriteResult result;
  std::vector<const DocumentWrite*> writes;
  std::vector<std::string> replaced;
  for (const DocumentWrite& w : documents) {
    auto it = stored.find(w.document.id);
    if (it != stored.end() && it->second == w.content_hash) {
      ++result.unchanged;
      continue;
    }
    writes.push_back(&w);
    if (it != stored.end()) {
      replaced.push_back(w.document.id);
      ++result.updated;
    } else {
      ++result.inserted;
    }
  }
  // The change log: removals of replaced chunks, then the new chunks.
  std::vector<int64_t> changed;
  std::vector<std::string> removed;
  if (!replaced.empty()) {
    ASSIGN_OR_RETURN(
        Result gone,
        db->Query("DELETE FROM chunks WHERE collection_id = $1 AND doc_id = "
                  "ANY($2::text[]) RETURNING id",
                  Params().Add(collection).Add(ArrayLiteral(replaced))));
    for (int i = 0; i < gone.rows(); ++i) {
      changed.push_back(gone.Int(i, 0));
      removed.push_back("true");
    }
  }
  const int64_t removed_chunks = static_cast<int64_t>(changed.size());
  for (size_t from = 0; from < writes.size(); from += kRowsPerInsert) {
    const size_t to = std::min(writes.size(), from + kRowsPerInsert);
    std::string sql =
        "INSERT INTO documents(collection_id, doc_id, source, title, "
        "metadata, content_hash) VALUES";
    Params p;
    p.Add(collection);
    for (size_t i = from; i < to; ++i) {
      const DocumentInput& d = writes[i]->document;
      const int n = p.size();
      absl::StrAppend(&sql, i > from ? "," : "", "($1, $", n + 1, ", $", n + 2,
                      ", $", n + 3, ", $", n + 4, ", $", n + 5, ")");
      p.Add(d.id).Add(d.source).Add(d.title);
      p.Add(d.metadata_json.empty() ? "{}" : d.metadata_json);
      p.Add(writes[i]->content_hash);
    }
    absl::StrAppend(&sql,
                    " ON CONFLICT (collection_id, doc_id) DO UPDATE SET "
                    "source = EXCLUDED.source, title = EXCLUDED.title, "
                    "metadata = EXCLUDED.metadata, content_hash = "
                    "EXCLUDED.content_hash");
    RETURN_IF_ERROR(db->QueryOnce(sql, p).status());
  }
  // Chunks, with ids drawn from the sequence first so that the change log
  // can be written in one statement.
  struct Row {
    const DocumentWrite* doc;
    size_t ord;
  };
  std::vector<Row> rows;
  for (const DocumentWrite* w : writes) {
    for (size_t i = 0; i < w->chunks.size(); ++i) rows.push_back({w, i});
  }
  if (!rows.empty()) {
    ASSIGN_OR_RETURN(
        Result ids,
        db->Query("SELECT nextval('chunks_id_seq') FROM generate_series(1, "
                  "$1)",
                  Params().Add(static_cast<int64_t>(rows.size()))));
    for (size_t from = 0; from < rows.size(); from += kRowsPerInsert) {
      const size_t to = std::min(rows.size(), from + kRowsPerInsert);
      std::string sql =
          "INSERT INTO chunks(id, collection_id, doc_id, ord, text, "
          "start_byte, end_byte, embedding, terms) VALUES";
      Params p;
      p.Add(collection);
      for (size_t i = from; i < to; ++i) {
        const ChunkWrite& c = rows[i].doc->chunks[rows[i].ord];
        const int64_t id = ids.Int(static_cast<int>(i), 0);
        const int n = p.size();
        absl::StrAppend(&sql, i > from ? "," : "", "($", n + 1, ", $1, $",
                        n + 2, ", $", n + 3, ", $", n + 4, ", $", n + 5, ", $",
                        n + 6, ", $", n + 7, "::bytea, $", n + 8,
                        "::tsvector)");
        p.Add(id).Add(rows[i].doc->document.id);
        p.Add(static_cast<int64_t>(rows[i].ord)).Add(c.text);
        p.Add(c.start).Add(c.end);
        if (c.embedding.empty()) {
          p.AddNull();
        } else {
          p.AddBytes(c.embedding.data(), c.embedding.size() * sizeof(float));
        }
        p.Add(TsVector(c.text));
        changed.push_back(id);
        removed.push_back("false");
      }
      RETURN_IF_ERROR(db->QueryOnce(sql, p).status());
    }
  }
  result.chunks = static_cast<int>(rows.size());
  RETURN_IF_ERROR(LogChanges(db.get(), collection, seq, changed, removed,
                             result.inserted,
                             static_cast<int64_t>(rows.size()) - removed_chunks)
                      .status());
  RETURN_IF_ERROR(tx.Commit());
  return result;
}

absl::StatusOr<int> PgDocumentStore::DeleteDocuments(
    int64_t collection, const std::vector<std::string>& ids) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db.get()));
  ASSIGN_OR_RETURN(const int64_t seq, LockCollection(db.get(), collection));
  const std::string id_array = ArrayLiteral(ids);
  ASSIGN_OR_RETURN(
      Result gone,
      db->Query("DELETE FROM chunks WHERE collection_id = $1 AND doc_id = "
                "ANY($2::text[]) RETURNING id",
                Params().Add(collection).Add(id_array)));
  ASSIGN_OR_RETURN(
      Result docs,
      db->Query("DELETE FROM documents WHERE collection_id = $1 AND doc_id = "
                "ANY($2::text[]) RETURNING doc_id",
                Params().Add(collection).Add(id_array)));
  std::vector<int64_t> changed;
  for (int i = 0; i < gone.rows(); ++i) changed.push_back(gone.Int(i, 0));
  const std::vector<std::string> removed(changed.size(), "true");
  RETURN_IF_ERROR(LogChanges(db.get(), collection, seq, changed, removed,
                             -docs.rows(),
                             -static_cast<int64_t>(changed.size()))
                      .status());
  RETURN_IF_ERROR(tx.Commit());
  return docs.rows();
}

absl::StatusOr<int64_t> PgDocumentStore::TotalDocuments() {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(Result r,
                   db->Query("SELECT COALESCE(SUM(doc_count), 0) FROM "
                             "collections"));
  return r.Int(0, 0);
}

// --- Search ---

absl::StatusOr<std::vector<ChunkHit>> PgDocumentStore::KeywordSearch(
    int64_t collection, const std::string& query, const MetadataFilter& filter,
    int k) {
  std::vector<ChunkHit> out;
  const std::string tsquery = TsQuery(query);
  if (tsquery.empty()) return out;
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  // ts_rank normalization 1: divided by 1 + log(passage length).
  ASSIGN_OR_RETURN(
      Result r,
      db->Query(absl::StrCat(
                    "SELECT ", kHitColumns,
                    ", ts_rank(c.terms, $2::tsquery, 1) AS rank FROM chunks c "
                    "JOIN documents d ON d.collection_id = c.collection_id "
                    "AND d.doc_id = c.doc_id WHERE c.collection_id = $1 AND "
                    "c.terms @@ $2::tsquery AND ",
                    FilterClause(3), " ORDER BY rank DESC, c.id LIMIT $4"),
                Params()
                    .Add(collection)
                    .Add(tsquery)
                    .Add(FilterJson(filter))
                    .Add(int64_t{k})));
  for (int i = 0; i < r.rows(); ++i) {
    ChunkHit h = ReadHit(r, i);
    h.score = r.Double(i, 8);
    out.push_back(std::move(h));
  }
  return out;
}

absl::StatusOr<std::vector<ChunkHit>> PgDocumentStore::LoadChunks(
    int64_t collection, const std::vector<int64_t>& ids,
    const MetadataFilter& filter) {
  std::vector<ChunkHit> out;
  if (ids.empty()) return out;
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(
      Result r,
      db->Query(absl::StrCat("SELECT ", kHitColumns,
                             " FROM chunks c JOIN documents d ON "
                             "d.collection_id = c.collection_id AND d.doc_id "
                             "= c.doc_id WHERE c.collection_id = $1 AND c.id "
                             "= ANY($2::bigint[]) AND ",
                             FilterClause(3)),
                Params()
                    .Add(collection)
                    .Add(ArrayLiteral(ids))
                    .Add(FilterJson(filter))));
  std::map<int64_t, ChunkHit> found;
  for (int i = 0; i < r.rows(); ++i) {
    ChunkHit h = ReadHit(r, i);
    found.emplace(h.chunk_id, std::move(h));
  }
  for (int64_t id : ids) {
    auto it = found.find(id);
    if (it != found.end()) out.push_back(std::move(it->second));
  }
  return out;
}

// --- Re-embedding ---

absl::StatusOr<std::vector<std::pair<int64_t, std::string>>>
PgDocumentStore::ChunkTexts(int64_t collection, int64_t after_id, int limit) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(
      Result r,
      db->Query("SELECT id, text FROM chunks WHERE collection_id "
                "= $1 AND id > $2 ORDER BY id LIMIT $3",
                Params().Add(collection).Add(after_id).Add(int64_t{limit})));
  std::vector<std::pair<int64_t, std::string>> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({r.Int(i, 0), std::string(r.Text(i, 1))});
  return out;
}

absl::Status PgDocumentStore::UpdateEmbeddings(
    int64_t collection,
    const std::vector<std::pair<int64_t, std::vector<float>>>& embeddings) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db.get()));
  ASSIGN_OR_RETURN(const int64_t seq, LockCollection(db.get(), collection));
  std::vector<int64_t> changed;
  for (size_t from = 0; from < embeddings.size(); from += kRowsPerInsert) {
    const size_t to = std::min(embeddings.size(), from + kRowsPerInsert);
    std::string sql = "UPDATE chunks SET embedding = v.e FROM (VALUES";
    Params p;
    p.Add(collection);
    for (size_t i = from; i < to; ++i) {
      const int n = p.size();
      absl::StrAppend(&sql, i > from ? "," : "", "($", n + 1, "::bigint, $",
                      n + 2, "::bytea)");
      p.Add(embeddings[i].first);
      p.AddBytes(embeddings[i].second.data(),
                 embeddings[i].second.size() * sizeof(float));
    }
    absl::StrAppend(&sql,
                    ") AS v(id, e) WHERE chunks.id = v.id AND "
                    "chunks.collection_id = $1 RETURNING chunks.id");
    ASSIGN_OR_RETURN(Result r, db->QueryOnce(sql, p));
    for (int i = 0; i < r.rows(); ++i) changed.push_back(r.Int(i, 0));
  }
  const std::vector<std::string> removed(changed.size(), "false");
  RETURN_IF_ERROR(
      LogChanges(db.get(), collection, seq, changed, removed, 0, 0).status());
  return tx.Commit();
}

// --- Change log ---

absl::StatusOr<std::vector<ChangeRecord>> PgDocumentStore::ReadChanges(
    int64_t collection, int64_t after_seq, int limit) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  ASSIGN_OR_RETURN(
      Result r,
      db->Query("SELECT ch.seq, ch.chunk_id, ch.removed, c.embedding FROM "
                "changes ch LEFT JOIN chunks c ON c.id = ch.chunk_id WHERE "
                "ch.collection_id = $1 AND ch.seq > $2 ORDER BY ch.seq LIMIT "
                "$3",
                Params().Add(collection).Add(after_seq).Add(int64_t{limit})));
  std::vector<ChangeRecord> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    ChangeRecord c;
    c.seq = r.Int(i, 0);
    c.chunk_id = r.Int(i, 1);
    c.removed = r.Bool(i, 2);
    if (!c.removed) c.embedding = r.Floats(i, 3);
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<int64_t> PgDocumentStore::ScanEmbeddings(
    int64_t collection,
    const std::function<void(int64_t, absl::Span<const float>)>& visit) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_.Acquire());
  // One snapshot: the pages and the sequence number agree.
  ASSIGN_OR_RETURN(Transaction tx,
                   Transaction::Begin(db.get(),
                                      "BEGIN ISOLATION LEVEL REPEATABLE READ "
                                      "READ ONLY"));
  ASSIGN_OR_RETURN(Result seq,
                   db->Query("SELECT last_seq FROM collections WHERE id = $1",
                             Params().Add(collection)));
  if (seq.rows() == 0) return absl::NotFoundError("the collection was deleted");
  int64_t after = 0;
  while (true) {
    ASSIGN_OR_RETURN(
        Result page,
        db->Query("SELECT id, embedding FROM chunks WHERE collection_id = $1 "
                  "AND id > $2 AND embedding IS NOT NULL ORDER BY id LIMIT $3",
                  Params().Add(collection).Add(after).Add(int64_t{kScanPage})));
    for (int i = 0; i < page.rows(); ++i) {
      const std::vector<float> v = page.Floats(i, 1);
      visit(page.Int(i, 0), v);
    }
    if (page.rows() < kScanPage) break;
    after = page.Int(page.rows() - 1, 0);
  }
  RETURN_IF_ERROR(tx.Commit());
  return seq.Int(0, 0);
}

}  // namespace lumen::retrieval::postgres
