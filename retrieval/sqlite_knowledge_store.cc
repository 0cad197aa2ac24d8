#include "retrieval/sqlite_knowledge_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "base/unicode.h"

namespace lumen::retrieval {

namespace {

constexpr double kRrfK = 60.0;

// A prepared statement, finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  absl::Status status() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("sqlite: ", sqlite3_errmsg(db_)));
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, const void* data, int bytes) {
    sqlite3_bind_blob(stmt_, i, data, bytes, SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  absl::Status Run() {
    const int rc = Step();
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("sqlite: ", sqlite3_errmsg(db_)));
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           sqlite3_column_bytes(stmt_, col))
             : "";
  }
  const void* Blob(int col, int* bytes) {
    *bytes = sqlite3_column_bytes(stmt_, col);
    return sqlite3_column_blob(stmt_, col);
  }
  bool IsNull(int col) {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

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

bool IsCjk(uint32_t cp) {
  return (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x9FFF) ||
         (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0xF900 && cp <= 0xFAFF);
}

// An FTS5 query matching any query term: Latin words of 3+ characters as
// quoted strings, CJK runs as their overlapping trigrams (the trigram
// tokenizer cannot match shorter strings).
std::string FtsQuery(absl::string_view query) {
  std::vector<std::string> terms;
  std::vector<uint32_t> word;
  auto flush = [&] {
    if (word.empty()) return;
    const bool cjk = IsCjk(word[0]);
    if (cjk && word.size() > 3) {
      for (size_t i = 0; i + 3 <= word.size(); ++i) {
        terms.push_back(EncodeUtf8({word[i], word[i + 1], word[i + 2]}));
      }
    } else if (word.size() >= 3) {
      terms.push_back(EncodeUtf8(word));
    }
    word.clear();
  };
  for (uint32_t cp : DecodeUtf8(query)) {
    const bool separator = IsWhitespace(cp) ||
                           (CodepointCategory(cp) & kCpPunctuation) ||
                           cp == '"';
    if (separator) {
      flush();
      continue;
    }
    if (!word.empty() && IsCjk(word.back()) != IsCjk(cp)) flush();
    word.push_back(cp);
  }
  flush();
  std::vector<std::string> quoted;
  for (const std::string& t : terms)
    quoted.push_back(absl::StrCat("\"", t, "\""));
  return absl::StrJoin(quoted, " OR ");
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
          c == '.'))
      return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteKnowledgeStore>>
SqliteKnowledgeStore::Open(const std::string& dir, Embedder* embedder,
                           ChunkerOptions chunking) {
  ::mkdir(dir.c_str(), 0755);
  std::unique_ptr<SqliteKnowledgeStore> s(new SqliteKnowledgeStore());
  s->dir_ = dir;
  s->embedder_ = embedder;
  s->chunking_ = chunking;
  const std::string path = dir + "/knowledge.db";
  if (sqlite3_open(path.c_str(), &s->db_) != SQLITE_OK) {
    return absl::InternalError(
        absl::StrCat("cannot open ", path, ": ", sqlite3_errmsg(s->db_)));
  }
  sqlite3_busy_timeout(s->db_, 5000);
  RETURN_IF_ERROR(s->Exec("PRAGMA journal_mode=WAL"));
  // FULL: a committed upsert is on disk before the RPC is acknowledged.
  RETURN_IF_ERROR(s->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(s->Exec(
      "CREATE TABLE IF NOT EXISTS collections(id INTEGER PRIMARY KEY, name "
      "TEXT UNIQUE NOT NULL,"
      " owner TEXT NOT NULL, shared_with TEXT NOT NULL DEFAULT '', dim INTEGER "
      "NOT NULL,"
      " hnsw_m INTEGER, ef_construction INTEGER, ef_search INTEGER,"
      " metric TEXT NOT NULL DEFAULT 'cosine');"
      "CREATE TABLE IF NOT EXISTS documents(collection_id INTEGER NOT NULL, "
      "doc_id TEXT NOT NULL,"
      " source TEXT, title TEXT, metadata TEXT NOT NULL DEFAULT '{}', "
      "content_hash TEXT NOT NULL,"
      " PRIMARY KEY(collection_id, doc_id));"
      "CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " collection_id INTEGER NOT NULL, doc_id TEXT NOT NULL, ord INTEGER NOT "
      "NULL,"
      " text TEXT NOT NULL, start INTEGER, end INTEGER, embedding BLOB);"
      "CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(collection_id, doc_id);"
      "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, "
      "tokenize='trigram');"
      "CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY "
      "AUTOINCREMENT,"
      " collection_id INTEGER NOT NULL, chunk_id INTEGER NOT NULL, op INTEGER "
      "NOT NULL);"));
  Stmt q(s->db_,
         "SELECT id, dim, hnsw_m, ef_construction, ef_search, metric FROM "
         "collections WHERE dim > 0");
  RETURN_IF_ERROR(q.status());
  while (q.Step() == SQLITE_ROW) {
    HnswOptions h{static_cast<int>(q.Int(2)), static_cast<int>(q.Int(3)),
                  static_cast<int>(q.Int(4)), q.Text(5) != "ip"};
    RETURN_IF_ERROR(s->LoadIndex(q.Int(0), static_cast<int>(q.Int(1)), h));
  }
  return s;
}

SqliteKnowledgeStore::~SqliteKnowledgeStore() {
  (void)SaveIndexes();
  sqlite3_close(db_);
}

absl::Status SqliteKnowledgeStore::Exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite: ", msg));
  }
  return absl::OkStatus();
}

std::string SqliteKnowledgeStore::IndexPath(int64_t id) const {
  return absl::StrCat(dir_, "/collection-", id, ".hnsw");
}

absl::Status SqliteKnowledgeStore::LoadIndex(int64_t id, int dim,
                                             const HnswOptions& hnsw) {
  std::unique_ptr<VectorIndex> index;
  int64_t seq = 0;
  auto loaded = VectorIndex::Load(IndexPath(id), dim, hnsw);
  if (loaded.ok()) {
    index = std::move(loaded->first);
    seq = loaded->second;
  } else {
    index = VectorIndex::Create(dim, hnsw);
  }
  // Catch up (or rebuild, from seq 0) with the change log.
  Stmt c(db_,
         "SELECT ch.chunk_id, ch.op, c.embedding FROM changes ch LEFT JOIN "
         "chunks c ON"
         " c.id = ch.chunk_id WHERE ch.collection_id = ? AND ch.seq > ? ORDER "
         "BY ch.seq");
  RETURN_IF_ERROR(c.status());
  c.Bind(1, id).Bind(2, seq);
  while (c.Step() == SQLITE_ROW) {
    const int64_t chunk = c.Int(0);
    if (c.Int(1) == 0) {
      index->Remove(chunk);
      continue;
    }
    int bytes = 0;
    const void* blob = c.Blob(2, &bytes);
    if (blob != nullptr && bytes == dim * static_cast<int>(sizeof(float))) {
      index->Add(chunk, static_cast<const float*>(blob));
    }
  }
  indexes_[id] = std::move(index);
  return absl::OkStatus();
}

absl::Status SqliteKnowledgeStore::MaybeCompact(int64_t id) {
  auto it = indexes_.find(id);
  if (it == indexes_.end()) return absl::OkStatus();
  VectorIndex& old = *it->second;
  if (old.deleted() < 256 || old.deleted() < old.size() / 2)
    return absl::OkStatus();
  Stmt info(db_,
            "SELECT hnsw_m, ef_construction, ef_search, metric FROM "
            "collections WHERE id = ?");
  RETURN_IF_ERROR(info.status());
  info.Bind(1, id);
  if (info.Step() != SQLITE_ROW) return absl::OkStatus();
  HnswOptions h{static_cast<int>(info.Int(0)), static_cast<int>(info.Int(1)),
                static_cast<int>(info.Int(2)), info.Text(3) != "ip"};
  auto fresh =
      VectorIndex::Create(old.dim(), h, std::max<size_t>(1024, old.size()));
  Stmt q(db_,
         "SELECT id, embedding FROM chunks WHERE collection_id = ? AND "
         "embedding IS NOT NULL");
  RETURN_IF_ERROR(q.status());
  q.Bind(1, id);
  while (q.Step() == SQLITE_ROW) {
    int bytes = 0;
    const void* blob = q.Blob(1, &bytes);
    if (bytes == old.dim() * static_cast<int>(sizeof(float))) {
      fresh->Add(q.Int(0), static_cast<const float*>(blob));
    }
  }
  it->second = std::move(fresh);
  return absl::OkStatus();
}

absl::Status SqliteKnowledgeStore::SaveIndexes() {
  std::lock_guard lock(mu_);
  Stmt q(db_, "SELECT COALESCE(MAX(seq), 0) FROM changes");
  RETURN_IF_ERROR(q.status());
  const int64_t seq = q.Step() == SQLITE_ROW ? q.Int(0) : 0;
  for (auto& [id, index] : indexes_)
    RETURN_IF_ERROR(index->Save(IndexPath(id), seq));
  return absl::OkStatus();
}

absl::Status SqliteKnowledgeStore::CreateCollection(
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
  std::lock_guard lock(mu_);
  if (CollectionId(name).ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection '", name, "' already exists"));
  }
  const int dim = embedder_ ? embedder_->dim() : 0;
  Stmt ins(db_,
           "INSERT INTO collections(name, owner, shared_with, dim, hnsw_m, "
           "ef_construction,"
           " ef_search, metric) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
  RETURN_IF_ERROR(ins.status());
  ins.Bind(1, name)
      .Bind(2, owner)
      .Bind(3, absl::StrJoin(shared_with, "\n"))
      .Bind(4, dim);
  ins.Bind(5, hnsw.m).Bind(6, hnsw.ef_construction).Bind(7, hnsw.ef_search);
  ins.Bind(8, std::string(hnsw.cosine ? "cosine" : "ip"));
  RETURN_IF_ERROR(ins.Run());
  if (dim > 0)
    indexes_[sqlite3_last_insert_rowid(db_)] = VectorIndex::Create(dim, hnsw);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SqliteKnowledgeStore::CollectionId(
    const std::string& name) const {
  Stmt q(db_, "SELECT id FROM collections WHERE name = ?");
  RETURN_IF_ERROR(q.status());
  q.Bind(1, name);
  if (q.Step() != SQLITE_ROW) {
    return absl::NotFoundError(
        absl::StrCat("collection '", name, "' not found"));
  }
  return q.Int(0);
}

absl::StatusOr<CollectionInfo> SqliteKnowledgeStore::GetCollection(
    const std::string& name) const {
  ASSIGN_OR_RETURN(auto all, ListCollections());
  for (CollectionInfo& c : all) {
    if (c.name == name) return c;
  }
  return absl::NotFoundError(absl::StrCat("collection '", name, "' not found"));
}

absl::StatusOr<std::vector<CollectionInfo>>
SqliteKnowledgeStore::ListCollections() const {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "SELECT c.name, c.owner, c.shared_with, c.dim, c.hnsw_m, "
         "c.ef_construction, c.ef_search, c.metric,"
         " (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id),"
         " (SELECT COUNT(*) FROM chunks k WHERE k.collection_id = c.id)"
         " FROM collections c ORDER BY c.name");
  RETURN_IF_ERROR(q.status());
  std::vector<CollectionInfo> out;
  while (q.Step() == SQLITE_ROW) {
    CollectionInfo c;
    c.name = q.Text(0);
    c.owner = q.Text(1);
    const std::string shared = q.Text(2);
    if (!shared.empty()) c.shared_with = absl::StrSplit(shared, '\n');
    c.dim = static_cast<int>(q.Int(3));
    c.hnsw = {static_cast<int>(q.Int(4)), static_cast<int>(q.Int(5)),
              static_cast<int>(q.Int(6)), q.Text(7) != "ip"};
    c.documents = q.Int(8);
    c.chunks = q.Int(9);
    out.push_back(std::move(c));
  }
  return out;
}

absl::Status SqliteKnowledgeStore::DeleteCollection(const std::string& name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(int64_t id, CollectionId(name));
  const std::string cid = absl::StrCat(id);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status s = Exec(
      absl::StrCat("DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM "
                   "chunks WHERE collection_id = ",
                   cid, "); DELETE FROM chunks WHERE collection_id = ", cid,
                   "; DELETE FROM documents WHERE collection_id = ", cid,
                   "; DELETE FROM changes WHERE collection_id = ", cid,
                   "; DELETE FROM collections WHERE id = ", cid));
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  RETURN_IF_ERROR(Exec("COMMIT"));
  indexes_.erase(id);
  std::remove(IndexPath(id).c_str());
  std::remove((IndexPath(id) + ".seq").c_str());
  return absl::OkStatus();
}

absl::StatusOr<UpsertResult> SqliteKnowledgeStore::Upsert(
    const std::string& collection, const std::vector<DocumentInput>& docs) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(int64_t cid, CollectionId(collection));
  UpsertResult result;
  struct Prepared {
    const DocumentInput* doc;
    std::string hash;
    bool exists;
    std::vector<Chunk> chunks;
    std::vector<std::vector<float>> embeddings;
  };
  std::vector<Prepared> work;
  for (size_t i = 0; i < docs.size(); ++i) {
    const DocumentInput& d = docs[i];
    if (d.id.empty() || d.id.size() > 512) {
      return absl::InvalidArgumentError(
          absl::StrCat("documents[", i, "].id must be 1-512 bytes"));
    }
    if (d.text.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("documents[", i, "] (", d.id, ") has no text"));
    }
    if (!d.metadata_json.empty()) {
      Stmt v(db_, "SELECT json_valid(?) AND json_type(?) = 'object'");
      v.Bind(1, d.metadata_json).Bind(2, d.metadata_json);
      if (v.Step() != SQLITE_ROW || v.Int(0) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "documents[", i, "] (", d.id, ") metadata is not a JSON object"));
      }
    }
    Prepared p{&d, ContentHash(d), false, {}, {}};
    Stmt q(db_,
           "SELECT content_hash FROM documents WHERE collection_id = ? AND "
           "doc_id = ?");
    q.Bind(1, cid).Bind(2, d.id);
    if (q.Step() == SQLITE_ROW) {
      p.exists = true;
      if (q.Text(0) == p.hash) {
        ++result.unchanged;
        continue;
      }
    }
    TokenCounter counter = embedder_
                               ? TokenCounter([this](absl::string_view t) {
                                   return embedder_->CountTokens(t);
                                 })
                               : TokenCounter(EstimateTokens);
    p.chunks = ChunkText(d.text, chunking_, counter);
    auto it = indexes_.find(cid);
    if (it != indexes_.end() && embedder_) {
      std::vector<std::string> texts;
      for (const Chunk& c : p.chunks) texts.push_back(c.text);
      ASSIGN_OR_RETURN(p.embeddings, embedder_->Embed(texts));
    }
    work.push_back(std::move(p));
  }

  // One transaction for the batch: all or nothing, durable on COMMIT.
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  std::vector<std::pair<int64_t, const float*>> added;
  std::vector<int64_t> removed;
  auto fail = [&](absl::Status s) {
    (void)Exec("ROLLBACK");
    return s;
  };
  for (Prepared& p : work) {
    const DocumentInput& d = *p.doc;
    if (p.exists) {
      Stmt old(db_,
               "SELECT id FROM chunks WHERE collection_id = ? AND doc_id = ?");
      old.Bind(1, cid).Bind(2, d.id);
      while (old.Step() == SQLITE_ROW) removed.push_back(old.Int(0));
    }
    for (int64_t chunk : removed) {
      Stmt a(db_, "DELETE FROM chunks_fts WHERE rowid = ?");
      a.Bind(1, chunk);
      if (absl::Status s = a.Run(); !s.ok()) return fail(s);
      Stmt b(
          db_,
          "INSERT INTO changes(collection_id, chunk_id, op) VALUES(?, ?, 0)");
      b.Bind(1, cid).Bind(2, chunk);
      if (absl::Status s = b.Run(); !s.ok()) return fail(s);
    }
    Stmt del(db_, "DELETE FROM chunks WHERE collection_id = ? AND doc_id = ?");
    del.Bind(1, cid).Bind(2, d.id);
    if (absl::Status s = del.Run(); !s.ok()) return fail(s);
    Stmt doc(db_,
             "INSERT OR REPLACE INTO documents(collection_id, doc_id, source, "
             "title, metadata,"
             " content_hash) VALUES(?, ?, ?, ?, ?, ?)");
    doc.Bind(1, cid).Bind(2, d.id).Bind(3, d.source).Bind(4, d.title);
    doc.Bind(5, d.metadata_json.empty() ? std::string("{}") : d.metadata_json)
        .Bind(6, p.hash);
    if (absl::Status s = doc.Run(); !s.ok()) return fail(s);
    for (size_t i = 0; i < p.chunks.size(); ++i) {
      const Chunk& c = p.chunks[i];
      Stmt ins(db_,
               "INSERT INTO chunks(collection_id, doc_id, ord, text, start, "
               "end, embedding)"
               " VALUES(?, ?, ?, ?, ?, ?, ?)");
      ins.Bind(1, cid)
          .Bind(2, d.id)
          .Bind(3, static_cast<int64_t>(i))
          .Bind(4, c.text);
      ins.Bind(5, c.start).Bind(6, c.end);
      if (!p.embeddings.empty()) {
        ins.BindBlob(7, p.embeddings[i].data(),
                     p.embeddings[i].size() * sizeof(float));
      }
      if (absl::Status s = ins.Run(); !s.ok()) return fail(s);
      const int64_t chunk_id = sqlite3_last_insert_rowid(db_);
      Stmt fts(db_, "INSERT INTO chunks_fts(rowid, text) VALUES(?, ?)");
      fts.Bind(1, chunk_id).Bind(2, c.text);
      if (absl::Status s = fts.Run(); !s.ok()) return fail(s);
      Stmt ch(
          db_,
          "INSERT INTO changes(collection_id, chunk_id, op) VALUES(?, ?, 1)");
      ch.Bind(1, cid).Bind(2, chunk_id);
      if (absl::Status s = ch.Run(); !s.ok()) return fail(s);
      if (!p.embeddings.empty())
        added.push_back({chunk_id, p.embeddings[i].data()});
      ++result.chunks;
    }
    p.exists ? ++result.updated : ++result.inserted;
  }
  RETURN_IF_ERROR(Exec("COMMIT"));
  // The derived index follows the committed state.
  if (auto it = indexes_.find(cid); it != indexes_.end()) {
    for (int64_t r : removed) it->second->Remove(r);
    for (auto& [id, vec] : added) it->second->Add(id, vec);
    RETURN_IF_ERROR(MaybeCompact(cid));
  }
  return result;
}

absl::StatusOr<int> SqliteKnowledgeStore::DeleteDocuments(
    const std::string& collection, const std::vector<std::string>& ids) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(int64_t cid, CollectionId(collection));
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  int deleted = 0;
  std::vector<int64_t> removed;
  for (const std::string& id : ids) {
    Stmt old(db_,
             "SELECT id FROM chunks WHERE collection_id = ? AND doc_id = ?");
    old.Bind(1, cid).Bind(2, id);
    while (old.Step() == SQLITE_ROW) removed.push_back(old.Int(0));
    Stmt del(db_,
             "DELETE FROM documents WHERE collection_id = ? AND doc_id = ?");
    del.Bind(1, cid).Bind(2, id);
    RETURN_IF_ERROR(del.Run());
    deleted += sqlite3_changes(db_);
    Stmt dc(db_, "DELETE FROM chunks WHERE collection_id = ? AND doc_id = ?");
    dc.Bind(1, cid).Bind(2, id);
    RETURN_IF_ERROR(dc.Run());
  }
  for (int64_t chunk : removed) {
    Stmt a(db_, "DELETE FROM chunks_fts WHERE rowid = ?");
    a.Bind(1, chunk);
    RETURN_IF_ERROR(a.Run());
    Stmt b(db_,
           "INSERT INTO changes(collection_id, chunk_id, op) VALUES(?, ?, 0)");
    b.Bind(1, cid).Bind(2, chunk);
    RETURN_IF_ERROR(b.Run());
  }
  RETURN_IF_ERROR(Exec("COMMIT"));
  if (auto it = indexes_.find(cid); it != indexes_.end()) {
    for (int64_t r : removed) it->second->Remove(r);
    RETURN_IF_ERROR(MaybeCompact(cid));
  }
  return deleted;
}

absl::StatusOr<size_t> SqliteKnowledgeStore::IndexTombstones(
    const std::string& collection) const {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(int64_t cid, CollectionId(collection));
  auto it = indexes_.find(cid);
  return it == indexes_.end() ? 0 : it->second->deleted();
}

int64_t SqliteKnowledgeStore::TotalDocuments() const {
  std::lock_guard lock(mu_);
  Stmt q(db_, "SELECT COUNT(*) FROM documents");
  return q.Step() == SQLITE_ROW ? q.Int(0) : 0;
}

absl::StatusOr<ChunkHit> SqliteKnowledgeStore::LoadChunk(
    int64_t chunk_id) const {
  Stmt q(db_,
         "SELECT c.doc_id, c.text, d.source, d.title, d.metadata, k.name FROM "
         "chunks c JOIN"
         " documents d ON d.collection_id = c.collection_id AND d.doc_id = "
         "c.doc_id JOIN"
         " collections k ON k.id = c.collection_id WHERE c.id = ?");
  RETURN_IF_ERROR(q.status());
  q.Bind(1, chunk_id);
  if (q.Step() != SQLITE_ROW) return absl::NotFoundError("chunk not found");
  ChunkHit h;
  h.chunk_id = chunk_id;
  h.document_id = q.Text(0);
  h.text = q.Text(1);
  h.source = q.Text(2);
  h.title = q.Text(3);
  h.metadata_json = q.Text(4);
  h.collection = q.Text(5);
  return h;
}

bool SqliteKnowledgeStore::PassesFilter(
    const ChunkHit& hit,
    const std::map<std::string, std::string>& filter) const {
  for (const auto& [key, value] : filter) {
    Stmt q(db_, "SELECT CAST(json_extract(?, ?) AS TEXT) = ?");
    std::string path = "$.\"";
    for (char c : key) {
      if (c != '"') path += c;
    }
    path += "\"";
    q.Bind(1, hit.metadata_json).Bind(2, path).Bind(3, value);
    if (q.Step() != SQLITE_ROW || q.Int(0) != 1) return false;
  }
  return true;
}

absl::StatusOr<std::vector<ChunkHit>> SqliteKnowledgeStore::Keyword(
    int64_t cid, const SearchRequest& r, int k) const {
  std::vector<ChunkHit> out;
  const std::string fts = FtsQuery(r.query);
  if (fts.empty()) return out;
  // Over-fetch so that metadata filters still leave k hits.
  Stmt q(db_,
         "SELECT f.rowid, -bm25(chunks_fts) FROM chunks_fts f JOIN chunks c ON "
         "c.id = f.rowid"
         " WHERE chunks_fts MATCH ? AND c.collection_id = ? ORDER BY "
         "bm25(chunks_fts) LIMIT ?");
  RETURN_IF_ERROR(q.status());
  q.Bind(1, fts).Bind(2, cid).Bind(
      3, static_cast<int64_t>(r.filter.empty() ? k : k * 8));
  while (q.Step() == SQLITE_ROW && static_cast<int>(out.size()) < k) {
    auto hit = LoadChunk(q.Int(0));
    if (!hit.ok() || !PassesFilter(*hit, r.filter)) continue;
    hit->score = q.Double(1);
    out.push_back(std::move(*hit));
  }
  return out;
}

absl::StatusOr<std::vector<ChunkHit>> SqliteKnowledgeStore::Vector(
    int64_t cid, const SearchRequest& r, int k) {
  std::vector<ChunkHit> out;
  auto it = indexes_.find(cid);
  if (it == indexes_.end() || embedder_ == nullptr) return out;
  ASSIGN_OR_RETURN(auto q, embedder_->Embed({r.query}));
  const int want = r.filter.empty() ? k : k * 8;
  for (const VectorHit& v : it->second->Search(q[0].data(), want)) {
    auto hit = LoadChunk(v.label);
    if (!hit.ok() || !PassesFilter(*hit, r.filter)) continue;
    hit->score = v.score;
    out.push_back(std::move(*hit));
    if (static_cast<int>(out.size()) >= k) break;
  }
  return out;
}

absl::StatusOr<std::vector<ChunkHit>> SqliteKnowledgeStore::Search(
    const std::string& collection, const SearchRequest& r) {
  if (r.top_k <= 0 || r.top_k > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in [1, 100] (got ", r.top_k, ")"));
  }
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(int64_t cid, CollectionId(collection));
  SearchMode mode = r.mode;
  if (mode != SearchMode::kKeyword &&
      (embedder_ == nullptr || !indexes_.contains(cid))) {
    if (mode == SearchMode::kVector) {
      return absl::FailedPreconditionError(
          absl::StrCat("collection '", collection,
                       "' is keyword-only (lumend has no --embedding-model)"));
    }
    mode = SearchMode::kKeyword;
  }
  std::vector<ChunkHit> hits;
  if (mode == SearchMode::kKeyword) {
    ASSIGN_OR_RETURN(hits, Keyword(cid, r, r.top_k));
  } else if (mode == SearchMode::kVector) {
    ASSIGN_OR_RETURN(hits, Vector(cid, r, r.top_k));
  } else {
    ASSIGN_OR_RETURN(auto vec, Vector(cid, r, r.top_k * 4));
    ASSIGN_OR_RETURN(auto kw, Keyword(cid, r, r.top_k * 4));
    std::map<int64_t, ChunkHit> fused;
    for (size_t i = 0; i < vec.size(); ++i) {
      auto& h = fused.emplace(vec[i].chunk_id, vec[i]).first->second;
      h.score = 1.0 / (kRrfK + i + 1);
    }
    for (size_t i = 0; i < kw.size(); ++i) {
      auto [it, inserted] = fused.emplace(kw[i].chunk_id, kw[i]);
      it->second.score =
          (inserted ? 0.0 : it->second.score) + 1.0 / (kRrfK + i + 1);
    }
    for (auto& [id, h] : fused) hits.push_back(std::move(h));
    std::sort(
        hits.begin(), hits.end(),
        [](const ChunkHit& a, const ChunkHit& b) { return a.score > b.score; });
    if (static_cast<int>(hits.size()) > r.top_k) hits.resize(r.top_k);
  }
  std::vector<ChunkHit> out;
  for (ChunkHit& h : hits) {
    if (h.score >= r.min_score) out.push_back(std::move(h));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<KnowledgeStore>> KnowledgeStore::Open(
    const std::string& dir, Embedder* embedder, ChunkerOptions chunking) {
  auto s = SqliteKnowledgeStore::Open(dir, embedder, chunking);
  if (!s.ok()) return s.status();
  return std::unique_ptr<KnowledgeStore>(std::move(*s));
}

}  // namespace lumen::retrieval
