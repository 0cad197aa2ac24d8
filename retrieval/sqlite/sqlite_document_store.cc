#include "retrieval/sqlite/sqlite_document_store.h"

#include <sys/stat.h>

#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"
#include "retrieval/sqlite/fts_query.h"
#include "retrieval/sqlite/sqlite_schema.h"

namespace lumen::retrieval::sqlite {

namespace {

constexpr const char* kCollectionColumns =
    "id, name, owner, shared_with, dim, hnsw_m, ef_construction, ef_search,"
    " metric, model_name, model_checksum, reembedding, doc_count, chunk_count";

CollectionRecord ReadCollection(const Statement& q) {
  CollectionRecord r;
  r.id = q.Int(0);
  CollectionInfo& c = r.info;
  c.name = q.Text(1);
  c.owner = q.Text(2);
  const std::string shared = q.Text(3);
  if (!shared.empty()) c.shared_with = absl::StrSplit(shared, '\n');
  c.dim = static_cast<int>(q.Int(4));
  c.hnsw = {static_cast<int>(q.Int(5)), static_cast<int>(q.Int(6)),
            static_cast<int>(q.Int(7)), q.Text(8) != "ip"};
  c.embedding_model = {q.Text(9), c.dim, q.Text(10)};
  c.reembedding = q.Int(11) != 0;
  c.documents = q.Int(12);
  c.chunks = q.Int(13);
  return r;
}

// The chunk columns every hit reads, and the metadata filter: each field of
// the JSON object ?N must equal the document's metadata field (as text).
constexpr const char* kHitColumns =
    "c.id, c.doc_id, c.text, c.start, c.end, d.source, d.title, d.metadata";
std::string FilterClause(int parameter) {
  return absl::StrCat(
      "NOT EXISTS (SELECT 1 FROM json_each(?", parameter,
      ") f WHERE CAST(json_extract(d.metadata, '$.\"' || replace(f.key, '\"',"
      " '') || '\"') AS TEXT) IS NOT f.value)");
}

ChunkHit ReadHit(const Statement& q) {
  ChunkHit h;
  h.chunk_id = q.Int(0);
  h.document_id = q.Text(1);
  h.text = q.Text(2);
  h.start = q.Int(3);
  h.end = q.Int(4);
  h.source = q.Text(5);
  h.title = q.Text(6);
  h.metadata_json = q.Text(7);
  return h;
}

std::string FilterJson(const MetadataFilter& filter) {
  return nlohmann::json(filter).dump(-1, ' ', false,
                                     nlohmann::json::error_handler_t::replace);
}

std::vector<float> ReadVector(absl::string_view blob) {
  std::vector<float> v(blob.size() / sizeof(float));  // [dim]
  std::memcpy(v.data(), blob.data(), v.size() * sizeof(float));
  return v;
}

// Removes the chunks of one stored document: keyword rows, chunk rows, and
// one "removed" change-log row each. Returns how many there were.
absl::StatusOr<int> RemoveDocumentChunks(Connection* db, int64_t collection,
                                         const std::string& doc_id) {
  std::vector<int64_t> ids;
  {
    ASSIGN_OR_RETURN(Statement old,
                     db->Prepare("SELECT id FROM chunks WHERE collection_id = "
                                 "? AND doc_id = ?"));
    old.Bind(1, collection).Bind(2, doc_id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, old.Step());
      if (!row) break;
      ids.push_back(old.Int(0));
    }
  }
  for (int64_t chunk : ids) {
    ASSIGN_OR_RETURN(Statement fts,
                     db->Prepare("DELETE FROM chunks_fts WHERE rowid = ?"));
    RETURN_IF_ERROR(fts.Bind(1, chunk).Run());
    ASSIGN_OR_RETURN(Statement log,
                     db->Prepare("INSERT INTO changes(collection_id, "
                                 "chunk_id, op) VALUES(?, ?, 0)"));
    RETURN_IF_ERROR(log.Bind(1, collection).Bind(2, chunk).Run());
  }
  ASSIGN_OR_RETURN(
      Statement del,
      db->Prepare("DELETE FROM chunks WHERE collection_id = ? AND doc_id = ?"));
  RETURN_IF_ERROR(del.Bind(1, collection).Bind(2, doc_id).Run());
  return static_cast<int>(ids.size());
}

absl::StatusOr<std::optional<std::string>> StoredHash(
    Connection* db, int64_t collection, const std::string& doc_id) {
  ASSIGN_OR_RETURN(Statement q,
                   db->Prepare("SELECT content_hash FROM documents WHERE "
                               "collection_id = ? AND doc_id = ?"));
  q.Bind(1, collection).Bind(2, doc_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return std::nullopt;
  return q.Text(0);
}

// Adds `delta` documents and chunks to the collection's counters; NotFound
// when the collection is gone (deleted since the caller looked it up).
absl::Status AddToCounters(Connection* db, int64_t collection,
                           int64_t documents, int64_t chunks) {
  ASSIGN_OR_RETURN(Statement q,
                   db->Prepare("UPDATE collections SET doc_count = doc_count "
                               "+ ?, chunk_count = chunk_count + ? WHERE id = "
                               "?"));
  RETURN_IF_ERROR(
      q.Bind(1, documents).Bind(2, chunks).Bind(3, collection).Run());
  if (db->changes() == 0) {
    return absl::NotFoundError("the collection was deleted meanwhile");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteDocumentStore>> SqliteDocumentStore::Open(
    const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  ASSIGN_OR_RETURN(std::unique_ptr<ConnectionPool> pool,
                   ConnectionPool::Open(dir + "/knowledge.db"));
  {
    ConnectionPool::Lease writer = pool->Writer();
    RETURN_IF_ERROR(MigrateSchema(writer.get()));
  }
  return std::unique_ptr<SqliteDocumentStore>(
      new SqliteDocumentStore(std::move(pool)));
}

// --- Collections ---

absl::StatusOr<CollectionRecord> SqliteDocumentStore::CreateCollection(
    const CollectionInfo& info) {
  ConnectionPool::Lease db = pool_->Writer();
  ASSIGN_OR_RETURN(Transaction tx,
                   Transaction::Begin(db.get(), Transaction::Mode::kImmediate));
  {
    ASSIGN_OR_RETURN(Statement q,
                     db->Prepare("SELECT 1 FROM collections WHERE name = ?"));
    q.Bind(1, info.name);
    ASSIGN_OR_RETURN(bool exists, q.Step());
    if (exists) {
      return absl::AlreadyExistsError(
          absl::StrCat("collection '", info.name, "' already exists"));
    }
  }
  ASSIGN_OR_RETURN(
      Statement ins,
      db->Prepare("INSERT INTO collections(name, owner, shared_with, dim, "
                  "hnsw_m, ef_construction, ef_search, metric, model_name, "
                  "model_checksum) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  ins.Bind(1, info.name)
      .Bind(2, info.owner)
      .Bind(3, absl::StrJoin(info.shared_with, "\n"))
      .Bind(4, int64_t{info.dim})
      .Bind(5, int64_t{info.hnsw.m})
      .Bind(6, int64_t{info.hnsw.ef_construction})
      .Bind(7, int64_t{info.hnsw.ef_search})
      .Bind(8, info.hnsw.cosine ? "cosine" : "ip")
      .Bind(9, info.embedding_model.name)
      .Bind(10, info.embedding_model.checksum);
  RETURN_IF_ERROR(ins.Run());
  CollectionRecord record{db->last_insert_rowid(), info};
  record.info.documents = record.info.chunks = 0;
  record.info.reembedding = false;
  RETURN_IF_ERROR(tx.Commit());
  return record;
}

absl::StatusOr<CollectionRecord> SqliteDocumentStore::GetCollection(
    const std::string& name) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_->Reader());
  ASSIGN_OR_RETURN(Statement q, db->Prepare(absl::StrCat(
                                    "SELECT ", kCollectionColumns,
                                    " FROM collections WHERE name = ?")));
  q.Bind(1, name);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) {
    return absl::NotFoundError(
        absl::StrCat("collection '", name, "' not found"));
  }
  return ReadCollection(q);
}

absl::StatusOr<std::vector<CollectionRecord>>
SqliteDocumentStore::ListCollections() {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_->Reader());
  ASSIGN_OR_RETURN(Statement q, db->Prepare(absl::StrCat(
                                    "SELECT ", kCollectionColumns,
                                    " FROM collections ORDER BY name")));
  std::vector<CollectionRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(ReadCollection(q));
  }
  return out;
}

absl::Status SqliteDocumentStore::DeleteCollection(int64_t collection) {
  ConnectionPool::Lease db = pool_->Writer();
  ASSIGN_OR_RETURN(Transaction tx,
                   Transaction::Begin(db.get(), Transaction::Mode::kImmediate));
  for (const char* sql :
       {"DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE "
        "collection_id = ?)",
        "DELETE FROM chunks WHERE collection_id = ?",
        "DELETE FROM documents WHERE collection_id = ?",
        "DELETE FROM changes WHERE collection_id = ?",
        "DELETE FROM collections WHERE id = ?"}) {
    ASSIGN_OR_RETURN(Statement del, db->Prepare(sql));
    RETURN_IF_ERROR(del.Bind(1, collection).Run());
  }
  return tx.Commit();
}

absl::Status SqliteDocumentStore::SetEmbeddingModel(
    int64_t collection, const EmbeddingModelInfo& model, bool reembedding) {
  ConnectionPool::Lease db = pool_->Writer();
  ASSIGN_OR_RETURN(
      Statement q,
      db->Prepare("UPDATE collections SET dim = ?, model_name = ?, "
                  "model_checksum = ?, reembedding = ? WHERE id = ?"));
  q.Bind(1, int64_t{model.dim})
      .Bind(2, model.name)
      .Bind(3, model.checksum)
      .Bind(4, int64_t{reembedding})
      .Bind(5, collection);
  RETURN_IF_ERROR(q.Run());
  if (db->changes() == 0) return absl::NotFoundError("collection not found");
  return absl::OkStatus();
}

// --- Documents ---

absl::StatusOr<std::map<std::string, std::string>>
SqliteDocumentStore::ContentHashes(int64_t collection,
                                   const std::vector<std::string>& ids) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_->Reader());
  std::map<std::string, std::string> out;
  for (const std::string& id : ids) {
    ASSIGN_OR_RETURN(std::optional<std::string> hash,
                     StoredHash(db.get(), collection, id));
    if (hash.has_value()) out[id] = std::move(*hash);
  }
  return out;
}

absl::StatusOr<WriteResult> SqliteDocumentStore::WriteDocuments(
    int64_t collection, const std::vector<DocumentWrite>& documents,
    const std::optional<EmbeddingModelInfo>& expected_model) {
  ConnectionPool::Lease db = pool_->Writer();
  ASSIGN_OR_RETURN(Transaction tx,
                   Transaction::Begin(db.get(), Transaction::Mode::kImmediate));
  if (expected_model.has_value()) {
    ASSIGN_OR_RETURN(Statement q,
                     db->Prepare("SELECT dim, model_name, model_checksum FROM "
                                 "collections WHERE id = ?"));
    q.Bind(1, collection);
    ASSIGN_OR_RETURN(bool found, q.Step());
    if (!found) return absl::NotFoundError("the collection was deleted");
    const EmbeddingModelInfo stored{q.Text(1), static_cast<int>(q.Int(0)),
                                    q.Text(2)};
    if (!(stored == *expected_model)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the collection's embedding model changed to ", stored.Describe(),
          " while these documents were embedded with ",
          expected_model->Describe()));
    }
  }
  WriteResult result;
  int64_t chunk_delta = 0;
  for (const DocumentWrite& w : documents) {
    const DocumentInput& d = w.document;
    // Another writer may have stored the document since the caller looked.
    ASSIGN_OR_RETURN(std::optional<std::string> stored,
                     StoredHash(db.get(), collection, d.id));
    if (stored == w.content_hash) {
      ++result.unchanged;
      continue;
    }
    if (stored.has_value()) {
      ASSIGN_OR_RETURN(int removed,
                       RemoveDocumentChunks(db.get(), collection, d.id));
      chunk_delta -= removed;
    }
    ASSIGN_OR_RETURN(
        Statement doc,
        db->Prepare("INSERT OR REPLACE INTO documents(collection_id, doc_id, "
                    "source, title, metadata, content_hash) VALUES(?, ?, ?, "
                    "?, ?, ?)"));
    doc.Bind(1, collection).Bind(2, d.id).Bind(3, d.source).Bind(4, d.title);
    doc.Bind(5, d.metadata_json.empty() ? "{}" : d.metadata_json)
        .Bind(6, w.content_hash);
    RETURN_IF_ERROR(doc.Run());
    for (size_t i = 0; i < w.chunks.size(); ++i) {
      const ChunkWrite& c = w.chunks[i];
      ASSIGN_OR_RETURN(
          Statement ins,
          db->Prepare("INSERT INTO chunks(collection_id, doc_id, ord, text, "
                      "start, end, embedding) VALUES(?, ?, ?, ?, ?, ?, ?)"));
      ins.Bind(1, collection)
          .Bind(2, d.id)
          .Bind(3, static_cast<int64_t>(i))
          .Bind(4, c.text)
          .Bind(5, c.start)
          .Bind(6, c.end);
      if (!c.embedding.empty()) {
        ins.BindBlob(7, c.embedding.data(), c.embedding.size() * sizeof(float));
      }
      RETURN_IF_ERROR(ins.Run());
      const int64_t chunk_id = db->last_insert_rowid();
      ASSIGN_OR_RETURN(
          Statement fts,
          db->Prepare("INSERT INTO chunks_fts(rowid, text) VALUES(?, ?)"));
      RETURN_IF_ERROR(fts.Bind(1, chunk_id).Bind(2, c.text).Run());
      ASSIGN_OR_RETURN(Statement log,
                       db->Prepare("INSERT INTO changes(collection_id, "
                                   "chunk_id, op) VALUES(?, ?, 1)"));
      RETURN_IF_ERROR(log.Bind(1, collection).Bind(2, chunk_id).Run());
    }
    chunk_delta += static_cast<int64_t>(w.chunks.size());
    result.chunks += static_cast<int>(w.chunks.size());
    stored.has_value() ? ++result.updated : ++result.inserted;
  }
  RETURN_IF_ERROR(
      AddToCounters(db.get(), collection, result.inserted, chunk_delta));
  RETURN_IF_ERROR(tx.Commit());
  return result;
}

absl::StatusOr<int> SqliteDocumentStore::DeleteDocuments(
    int64_t collection, const std::vector<std::string>& ids) {
  ConnectionPool::Lease db = pool_->Writer();
  ASSIGN_OR_RETURN(Transaction tx,
                   Transaction::Begin(db.get(), Transaction::Mode::kImmediate));
  int deleted = 0;
  int64_t chunks = 0;
  for (const std::string& id : std::set<std::string>(ids.begin(), ids.end())) {
    ASSIGN_OR_RETURN(Statement del,
                     db->Prepare("DELETE FROM documents WHERE collection_id = "
                                 "? AND doc_id = ?"));
    RETURN_IF_ERROR(del.Bind(1, collection).Bind(2, id).Run());
    if (db->changes() == 0) continue;
    ++deleted;
    ASSIGN_OR_RETURN(int removed,
                     RemoveDocumentChunks(db.get(), collection, id));
    chunks += removed;
  }
  RETURN_IF_ERROR(AddToCounters(db.get(), collection, -deleted, -chunks));
  RETURN_IF_ERROR(tx.Commit());
  return deleted;
}

absl::StatusOr<int64_t> SqliteDocumentStore::TotalDocuments() {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_->Reader());
  ASSIGN_OR_RETURN(
      Statement q,
      db->Prepare("SELECT COALESCE(SUM(doc_count), 0) FROM collections"));
  ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

// --- Search ---

absl::StatusOr<std::vector<ChunkHit>> SqliteDocumentStore::KeywordSearch(
    int64_t collection, const std::string& query, const MetadataFilter& filter,
    int k) {
  std::vector<ChunkHit> out;
  const std::string fts = FtsQuery(query);
  if (fts.empty()) return out;
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_->Reader());
  // bm25() is lower for better matches; its negation is the score.
  ASSIGN_OR_RETURN(
      Statement q,
      db->Prepare(absl::StrCat(
          "SELECT ", kHitColumns,
          ", -bm25(chunks_fts) FROM chunks_fts f JOIN chunks c ON c.id = "
          "f.rowid JOIN documents d ON d.collection_id = c.collection_id AND "
          "d.doc_id = c.doc_id WHERE chunks_fts MATCH ?1 AND c.collection_id "
          "= ?2 AND ",
          FilterClause(3), " ORDER BY bm25(chunks_fts) LIMIT ?4")));
  q.Bind(1, fts).Bind(2, collection).Bind(3, FilterJson(filter));
  q.Bind(4, int64_t{k});
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ChunkHit h = ReadHit(q);
    h.score = q.Double(8);
    out.push_back(std::move(h));
  }
  return out;
}

absl::StatusOr<std::vector<ChunkHit>> SqliteDocumentStore::LoadChunks(
    int64_t collection, const std::vector<int64_t>& ids,
    const MetadataFilter& filter) {
  std::vector<ChunkHit> out;
  if (ids.empty()) return out;
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_->Reader());
  ASSIGN_OR_RETURN(
      Statement q,
      db->Prepare(absl::StrCat(
          "SELECT ", kHitColumns,
          " FROM chunks c JOIN documents d ON d.collection_id = "
          "c.collection_id AND d.doc_id = c.doc_id WHERE c.collection_id = ?1 "
          "AND c.id IN (SELECT value FROM json_each(?2)) AND ",
          FilterClause(3))));
  q.Bind(1, collection)
      .Bind(2, absl::StrCat("[", absl::StrJoin(ids, ","), "]"))
      .Bind(3, FilterJson(filter));
  std::map<int64_t, ChunkHit> found;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ChunkHit h = ReadHit(q);
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
SqliteDocumentStore::ChunkTexts(int64_t collection, int64_t after_id,
                                int limit) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_->Reader());
  ASSIGN_OR_RETURN(Statement q,
                   db->Prepare("SELECT id, text FROM chunks WHERE "
                               "collection_id = ? AND id > ? ORDER BY id "
                               "LIMIT ?"));
  q.Bind(1, collection).Bind(2, after_id).Bind(3, int64_t{limit});
  std::vector<std::pair<int64_t, std::string>> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.Int(0), q.Text(1)});
  }
  return out;
}

absl::Status SqliteDocumentStore::UpdateEmbeddings(
    int64_t collection,
    const std::vector<std::pair<int64_t, std::vector<float>>>& embeddings) {
  ConnectionPool::Lease db = pool_->Writer();
  ASSIGN_OR_RETURN(Transaction tx,
                   Transaction::Begin(db.get(), Transaction::Mode::kImmediate));
  for (const auto& [chunk, vector] : embeddings) {
    ASSIGN_OR_RETURN(Statement up,
                     db->Prepare("UPDATE chunks SET embedding = ? WHERE id = ? "
                                 "AND collection_id = ?"));
    up.BindBlob(1, vector.data(), vector.size() * sizeof(float))
        .Bind(2, chunk)
        .Bind(3, collection);
    RETURN_IF_ERROR(up.Run());
    if (db->changes() == 0) continue;  // deleted meanwhile
    ASSIGN_OR_RETURN(Statement log,
                     db->Prepare("INSERT INTO changes(collection_id, "
                                 "chunk_id, op) VALUES(?, ?, 1)"));
    RETURN_IF_ERROR(log.Bind(1, collection).Bind(2, chunk).Run());
  }
  return tx.Commit();
}

// --- Change log ---

absl::StatusOr<std::vector<ChangeRecord>> SqliteDocumentStore::ReadChanges(
    int64_t collection, int64_t after_seq, int limit) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_->Reader());
  ASSIGN_OR_RETURN(
      Statement q,
      db->Prepare("SELECT ch.seq, ch.chunk_id, ch.op, c.embedding FROM "
                  "changes ch LEFT JOIN chunks c ON c.id = ch.chunk_id WHERE "
                  "ch.collection_id = ? AND ch.seq > ? ORDER BY ch.seq LIMIT "
                  "?"));
  q.Bind(1, collection).Bind(2, after_seq).Bind(3, int64_t{limit});
  std::vector<ChangeRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ChangeRecord c;
    c.seq = q.Int(0);
    c.chunk_id = q.Int(1);
    c.removed = q.Int(2) == 0;
    if (!c.removed) c.embedding = ReadVector(q.Blob(3));
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<int64_t> SqliteDocumentStore::ScanEmbeddings(
    int64_t collection,
    const std::function<void(int64_t, absl::Span<const float>)>& visit) {
  ASSIGN_OR_RETURN(ConnectionPool::Lease db, pool_->Reader());
  // One read transaction: the embeddings and the sequence number agree.
  ASSIGN_OR_RETURN(Transaction tx,
                   Transaction::Begin(db.get(), Transaction::Mode::kDeferred));
  int64_t seq = 0;
  {
    ASSIGN_OR_RETURN(Statement q,
                     db->Prepare("SELECT COALESCE(MAX(seq), 0) FROM changes "
                                 "WHERE collection_id = ?"));
    q.Bind(1, collection);
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) seq = q.Int(0);
  }
  ASSIGN_OR_RETURN(Statement q,
                   db->Prepare("SELECT id, embedding FROM chunks WHERE "
                               "collection_id = ? AND embedding IS NOT NULL"));
  q.Bind(1, collection);
  std::vector<float> v;  // [dim]
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    const absl::string_view blob = q.Blob(1);
    v.resize(blob.size() / sizeof(float));
    std::memcpy(v.data(), blob.data(), v.size() * sizeof(float));
    visit(q.Int(0), v);
  }
  return seq;
}

}  // namespace lumen::retrieval::sqlite
