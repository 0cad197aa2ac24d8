#include "retrieval/sqlite_knowledge_store.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "base/unicode.h"

namespace lumen::retrieval {

namespace {

constexpr double kRrfK = 60.0;

using sqlite::Connection;
using sqlite::Statement;
using sqlite::Transaction;

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
  ASSIGN_OR_RETURN(s->db_, Connection::Open(dir + "/knowledge.db"));
  std::lock_guard lock(s->db_mu_);
  RETURN_IF_ERROR(s->db_->Exec(
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
  ASSIGN_OR_RETURN(Statement q,
                   s->db_->Prepare("SELECT id, dim, hnsw_m, ef_construction, "
                                   "ef_search, metric FROM collections WHERE "
                                   "dim > 0"));
  std::vector<std::pair<int64_t, std::pair<int, HnswOptions>>> collections;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    HnswOptions h{static_cast<int>(q.Int(2)), static_cast<int>(q.Int(3)),
                  static_cast<int>(q.Int(4)), q.Text(5) != "ip"};
    collections.push_back({q.Int(0), {static_cast<int>(q.Int(1)), h}});
  }
  for (const auto& [id, dim_hnsw] : collections) {
    RETURN_IF_ERROR(s->LoadIndex(id, dim_hnsw.first, dim_hnsw.second));
  }
  return s;
}

SqliteKnowledgeStore::~SqliteKnowledgeStore() { (void)SaveIndexes(); }

std::string SqliteKnowledgeStore::IndexPath(int64_t id) const {
  return absl::StrCat(dir_, "/collection-", id, ".hnsw");
}

std::shared_ptr<VectorIndex> SqliteKnowledgeStore::FindIndex(int64_t id) const {
  std::lock_guard lock(indexes_mu_);
  auto it = indexes_.find(id);
  return it == indexes_.end() ? nullptr : it->second;
}

absl::Status SqliteKnowledgeStore::LoadIndex(int64_t id, int dim,
                                             const HnswOptions& hnsw) {
  std::shared_ptr<VectorIndex> index;
  int64_t seq = 0;
  auto loaded = VectorIndex::Load(IndexPath(id), dim, hnsw);
  if (loaded.ok()) {
    index = std::move(loaded->first);
    seq = loaded->second;
  } else {
    index = VectorIndex::Create(dim, hnsw);
  }
  // Catch up (or rebuild, from seq 0) with the change log.
  ASSIGN_OR_RETURN(
      Statement c,
      db_->Prepare("SELECT ch.chunk_id, ch.op, c.embedding FROM changes ch "
                   "LEFT JOIN chunks c ON c.id = ch.chunk_id WHERE "
                   "ch.collection_id = ? AND ch.seq > ? ORDER BY ch.seq"));
  c.Bind(1, id).Bind(2, seq);
  while (true) {
    ASSIGN_OR_RETURN(bool row, c.Step());
    if (!row) break;
    const int64_t chunk = c.Int(0);
    if (c.Int(1) == 0) {
      index->Remove(chunk);
      continue;
    }
    const absl::string_view blob = c.Blob(2);
    if (blob.size() == dim * sizeof(float)) {
      index->Add(chunk, reinterpret_cast<const float*>(blob.data()));
    }
  }
  std::lock_guard lock(indexes_mu_);
  indexes_[id] = std::move(index);
  return absl::OkStatus();
}

absl::Status SqliteKnowledgeStore::MaybeCompact(int64_t id) {
  std::shared_ptr<VectorIndex> old = FindIndex(id);
  if (old == nullptr) return absl::OkStatus();
  if (old->deleted() < 256 || old->deleted() < old->size() / 2)
    return absl::OkStatus();
  ASSIGN_OR_RETURN(Statement info,
                   db_->Prepare("SELECT hnsw_m, ef_construction, ef_search, "
                                "metric FROM collections WHERE id = ?"));
  info.Bind(1, id);
  ASSIGN_OR_RETURN(bool found, info.Step());
  if (!found) return absl::OkStatus();
  HnswOptions h{static_cast<int>(info.Int(0)), static_cast<int>(info.Int(1)),
                static_cast<int>(info.Int(2)), info.Text(3) != "ip"};
  std::shared_ptr<VectorIndex> fresh =
      VectorIndex::Create(old->dim(), h, std::max<size_t>(1024, old->size()));
  ASSIGN_OR_RETURN(Statement q,
                   db_->Prepare("SELECT id, embedding FROM chunks WHERE "
                                "collection_id = ? AND embedding IS NOT NULL"));
  q.Bind(1, id);
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    const absl::string_view blob = q.Blob(1);
    if (blob.size() == old->dim() * sizeof(float)) {
      fresh->Add(q.Int(0), reinterpret_cast<const float*>(blob.data()));
    }
  }
  std::lock_guard lock(indexes_mu_);
  indexes_[id] = std::move(fresh);
  return absl::OkStatus();
}

absl::Status SqliteKnowledgeStore::SaveIndexes() {
  std::lock_guard lock(db_mu_);
  ASSIGN_OR_RETURN(Statement q,
                   db_->Prepare("SELECT COALESCE(MAX(seq), 0) FROM changes"));
  ASSIGN_OR_RETURN(bool row, q.Step());
  const int64_t seq = row ? q.Int(0) : 0;
  std::lock_guard index_lock(indexes_mu_);
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
  std::lock_guard lock(db_mu_);
  if (CollectionId(name).ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection '", name, "' already exists"));
  }
  const int dim = embedder_ ? embedder_->dim() : 0;
  ASSIGN_OR_RETURN(
      Statement ins,
      db_->Prepare("INSERT INTO collections(name, owner, shared_with, dim, "
                   "hnsw_m, ef_construction, ef_search, metric) VALUES(?, ?, "
                   "?, ?, ?, ?, ?, ?)"));
  ins.Bind(1, name)
      .Bind(2, owner)
      .Bind(3, absl::StrJoin(shared_with, "\n"))
      .Bind(4, int64_t{dim});
  ins.Bind(5, int64_t{hnsw.m})
      .Bind(6, int64_t{hnsw.ef_construction})
      .Bind(7, int64_t{hnsw.ef_search});
  ins.Bind(8, hnsw.cosine ? "cosine" : "ip");
  RETURN_IF_ERROR(ins.Run());
  if (dim > 0) {
    std::lock_guard index_lock(indexes_mu_);
    indexes_[db_->last_insert_rowid()] = VectorIndex::Create(dim, hnsw);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SqliteKnowledgeStore::CollectionId(
    const std::string& name) const {
  ASSIGN_OR_RETURN(Statement q,
                   db_->Prepare("SELECT id FROM collections WHERE name = ?"));
  q.Bind(1, name);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) {
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
  std::lock_guard lock(db_mu_);
  ASSIGN_OR_RETURN(
      Statement q,
      db_->Prepare(
          "SELECT c.name, c.owner, c.shared_with, c.dim, c.hnsw_m, "
          "c.ef_construction, c.ef_search, c.metric,"
          " (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id),"
          " (SELECT COUNT(*) FROM chunks k WHERE k.collection_id = c.id)"
          " FROM collections c ORDER BY c.name"));
  std::vector<CollectionInfo> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
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
  std::lock_guard lock(db_mu_);
  ASSIGN_OR_RETURN(int64_t id, CollectionId(name));
  ASSIGN_OR_RETURN(
      Transaction tx,
      Transaction::Begin(db_.get(), Transaction::Mode::kImmediate));
  for (const char* sql :
       {"DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE "
        "collection_id = ?)",
        "DELETE FROM chunks WHERE collection_id = ?",
        "DELETE FROM documents WHERE collection_id = ?",
        "DELETE FROM changes WHERE collection_id = ?",
        "DELETE FROM collections WHERE id = ?"}) {
    ASSIGN_OR_RETURN(Statement del, db_->Prepare(sql));
    RETURN_IF_ERROR(del.Bind(1, id).Run());
  }
  RETURN_IF_ERROR(tx.Commit());
  {
    std::lock_guard index_lock(indexes_mu_);
    indexes_.erase(id);
  }
  std::remove(IndexPath(id).c_str());
  std::remove((IndexPath(id) + ".seq").c_str());
  return absl::OkStatus();
}

namespace {

// Removes the chunks of one document (keyword rows, chunk rows) and logs
// each removal once; `removed` gets their ids.
absl::Status RemoveDocumentChunks(Connection* db, int64_t cid,
                                  const std::string& doc_id,
                                  std::vector<int64_t>* removed) {
  std::vector<int64_t> ids;
  {
    ASSIGN_OR_RETURN(Statement old,
                     db->Prepare("SELECT id FROM chunks WHERE collection_id = "
                                 "? AND doc_id = ?"));
    old.Bind(1, cid).Bind(2, doc_id);
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
    RETURN_IF_ERROR(log.Bind(1, cid).Bind(2, chunk).Run());
  }
  ASSIGN_OR_RETURN(
      Statement del,
      db->Prepare("DELETE FROM chunks WHERE collection_id = ? AND doc_id = ?"));
  RETURN_IF_ERROR(del.Bind(1, cid).Bind(2, doc_id).Run());
  removed->insert(removed->end(), ids.begin(), ids.end());
  return absl::OkStatus();
}

// The stored content hash of a document; nullopt when it does not exist.
absl::StatusOr<std::optional<std::string>> StoredHash(
    Connection* db, int64_t cid, const std::string& doc_id) {
  ASSIGN_OR_RETURN(Statement q,
                   db->Prepare("SELECT content_hash FROM documents WHERE "
                               "collection_id = ? AND doc_id = ?"));
  q.Bind(1, cid).Bind(2, doc_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return std::nullopt;
  return q.Text(0);
}

}  // namespace

absl::StatusOr<UpsertResult> SqliteKnowledgeStore::Upsert(
    const std::string& collection, const std::vector<DocumentInput>& docs) {
  UpsertResult result;
  struct Prepared {
    const DocumentInput* doc;
    std::string hash;
    std::vector<Chunk> chunks;
    std::vector<std::vector<float>> embeddings;  // [chunks][dim] or empty
  };
  std::vector<Prepared> work;
  int64_t cid = 0;
  bool vector_collection = false;
  // 1. Validate and skip unchanged documents (short SQL under the lock).
  {
    std::lock_guard lock(db_mu_);
    ASSIGN_OR_RETURN(cid, CollectionId(collection));
    vector_collection = FindIndex(cid) != nullptr && embedder_ != nullptr;
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
        ASSIGN_OR_RETURN(Statement v, db_->Prepare("SELECT json_valid(?1) AND "
                                                   "json_type(?1) = 'object'"));
        v.Bind(1, d.metadata_json);
        absl::StatusOr<bool> row = v.Step();
        if (!row.ok() || !*row || v.Int(0) != 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              "documents[", i, "] (", d.id, ") metadata is not a JSON object"));
        }
      }
      Prepared p{&d, ContentHash(d), {}, {}};
      ASSIGN_OR_RETURN(std::optional<std::string> stored,
                       StoredHash(db_.get(), cid, d.id));
      if (stored == p.hash) {
        ++result.unchanged;
        continue;
      }
      work.push_back(std::move(p));
    }
  }
  // 2. Chunk and embed without any lock: searches go on meanwhile.
  TokenCounter counter = embedder_ ? TokenCounter([this](absl::string_view t) {
    return embedder_->CountTokens(t);
  })
                                   : TokenCounter(EstimateTokens);
  for (Prepared& p : work) {
    p.chunks = ChunkText(p.doc->text, chunking_, counter);
    if (vector_collection) {
      std::vector<std::string> texts;
      for (const Chunk& c : p.chunks) texts.push_back(c.text);
      ASSIGN_OR_RETURN(p.embeddings, embedder_->Embed(texts));
    }
  }
  // 3. One transaction for the batch: all or nothing, durable on COMMIT.
  std::lock_guard lock(db_mu_);
  ASSIGN_OR_RETURN(
      Transaction tx,
      Transaction::Begin(db_.get(), Transaction::Mode::kImmediate));
  std::vector<std::pair<int64_t, const float*>> added;
  std::vector<int64_t> removed;
  for (Prepared& p : work) {
    const DocumentInput& d = *p.doc;
    // Another upsert may have written the document since step 1.
    ASSIGN_OR_RETURN(std::optional<std::string> stored,
                     StoredHash(db_.get(), cid, d.id));
    if (stored == p.hash) {
      ++result.unchanged;
      continue;
    }
    if (stored.has_value()) {
      RETURN_IF_ERROR(RemoveDocumentChunks(db_.get(), cid, d.id, &removed));
    }
    ASSIGN_OR_RETURN(
        Statement doc,
        db_->Prepare("INSERT OR REPLACE INTO documents(collection_id, doc_id, "
                     "source, title, metadata, content_hash) VALUES(?, ?, ?, "
                     "?, ?, ?)"));
    doc.Bind(1, cid).Bind(2, d.id).Bind(3, d.source).Bind(4, d.title);
    doc.Bind(5, d.metadata_json.empty() ? "{}" : d.metadata_json)
        .Bind(6, p.hash);
    RETURN_IF_ERROR(doc.Run());
    for (size_t i = 0; i < p.chunks.size(); ++i) {
      const Chunk& c = p.chunks[i];
      ASSIGN_OR_RETURN(
          Statement ins,
          db_->Prepare("INSERT INTO chunks(collection_id, doc_id, ord, text, "
                       "start, end, embedding) VALUES(?, ?, ?, ?, ?, ?, ?)"));
      ins.Bind(1, cid)
          .Bind(2, d.id)
          .Bind(3, static_cast<int64_t>(i))
          .Bind(4, c.text);
      ins.Bind(5, c.start).Bind(6, c.end);
      if (!p.embeddings.empty()) {
        ins.BindBlob(7, p.embeddings[i].data(),
                     p.embeddings[i].size() * sizeof(float));
      }
      RETURN_IF_ERROR(ins.Run());
      const int64_t chunk_id = db_->last_insert_rowid();
      ASSIGN_OR_RETURN(
          Statement fts,
          db_->Prepare("INSERT INTO chunks_fts(rowid, text) VALUES(?, ?)"));
      RETURN_IF_ERROR(fts.Bind(1, chunk_id).Bind(2, c.text).Run());
      ASSIGN_OR_RETURN(Statement log,
                       db_->Prepare("INSERT INTO changes(collection_id, "
                                    "chunk_id, op) VALUES(?, ?, 1)"));
      RETURN_IF_ERROR(log.Bind(1, cid).Bind(2, chunk_id).Run());
      if (!p.embeddings.empty())
        added.push_back({chunk_id, p.embeddings[i].data()});
      ++result.chunks;
    }
    stored.has_value() ? ++result.updated : ++result.inserted;
  }
  RETURN_IF_ERROR(tx.Commit());
  // The derived index follows the committed state, in commit order (the
  // connection lock is still held).
  if (std::shared_ptr<VectorIndex> index = FindIndex(cid)) {
    for (int64_t r : removed) index->Remove(r);
    for (auto& [id, vec] : added) index->Add(id, vec);
    RETURN_IF_ERROR(MaybeCompact(cid));
  }
  return result;
}

absl::StatusOr<int> SqliteKnowledgeStore::DeleteDocuments(
    const std::string& collection, const std::vector<std::string>& ids) {
  std::lock_guard lock(db_mu_);
  ASSIGN_OR_RETURN(int64_t cid, CollectionId(collection));
  ASSIGN_OR_RETURN(
      Transaction tx,
      Transaction::Begin(db_.get(), Transaction::Mode::kImmediate));
  int deleted = 0;
  std::vector<int64_t> removed;
  for (const std::string& id : ids) {
    ASSIGN_OR_RETURN(Statement del,
                     db_->Prepare("DELETE FROM documents WHERE collection_id = "
                                  "? AND doc_id = ?"));
    RETURN_IF_ERROR(del.Bind(1, cid).Bind(2, id).Run());
    const int changed = db_->changes();
    deleted += changed;
    if (changed > 0) {
      RETURN_IF_ERROR(RemoveDocumentChunks(db_.get(), cid, id, &removed));
    }
  }
  RETURN_IF_ERROR(tx.Commit());
  if (std::shared_ptr<VectorIndex> index = FindIndex(cid)) {
    for (int64_t r : removed) index->Remove(r);
    RETURN_IF_ERROR(MaybeCompact(cid));
  }
  return deleted;
}

absl::StatusOr<size_t> SqliteKnowledgeStore::IndexTombstones(
    const std::string& collection) const {
  std::lock_guard lock(db_mu_);
  ASSIGN_OR_RETURN(int64_t cid, CollectionId(collection));
  std::shared_ptr<VectorIndex> index = FindIndex(cid);
  return index == nullptr ? 0 : index->deleted();
}

int64_t SqliteKnowledgeStore::TotalDocuments() const {
  std::lock_guard lock(db_mu_);
  auto q = db_->Prepare("SELECT COUNT(*) FROM documents");
  if (!q.ok()) return 0;
  absl::StatusOr<bool> row = q->Step();
  return row.ok() && *row ? q->Int(0) : 0;
}

absl::StatusOr<ChunkHit> SqliteKnowledgeStore::LoadChunk(
    int64_t chunk_id) const {
  ASSIGN_OR_RETURN(
      Statement q,
      db_->Prepare("SELECT c.doc_id, c.text, d.source, d.title, d.metadata, "
                   "k.name FROM chunks c JOIN documents d ON d.collection_id "
                   "= c.collection_id AND d.doc_id = c.doc_id JOIN "
                   "collections k ON k.id = c.collection_id WHERE c.id = ?"));
  q.Bind(1, chunk_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return absl::NotFoundError("chunk not found");
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

absl::StatusOr<bool> SqliteKnowledgeStore::PassesFilter(
    const ChunkHit& hit,
    const std::map<std::string, std::string>& filter) const {
  for (const auto& [key, value] : filter) {
    ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare("SELECT CAST(json_extract(?, ?) AS TEXT) IS ?"));
    std::string path = "$.\"";
    for (char c : key) {
      if (c != '"') path += c;
    }
    path += "\"";
    q.Bind(1, hit.metadata_json).Bind(2, path).Bind(3, value);
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row || q.Int(0) != 1) return false;
  }
  return true;
}

absl::StatusOr<std::vector<ChunkHit>> SqliteKnowledgeStore::Keyword(
    int64_t cid, const SearchRequest& r, int k) {
  std::vector<ChunkHit> out;
  const std::string fts = FtsQuery(r.query);
  if (fts.empty()) return out;
  std::lock_guard lock(db_mu_);
  // Over-fetch so that metadata filters still leave k hits.
  ASSIGN_OR_RETURN(
      Statement q,
      db_->Prepare("SELECT f.rowid, -bm25(chunks_fts) FROM chunks_fts f JOIN "
                   "chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ? AND "
                   "c.collection_id = ? ORDER BY bm25(chunks_fts) LIMIT ?"));
  q.Bind(1, fts).Bind(2, cid).Bind(
      3, static_cast<int64_t>(r.filter.empty() ? k : k * 8));
  while (static_cast<int>(out.size()) < k) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(ChunkHit hit, LoadChunk(q.Int(0)));
    ASSIGN_OR_RETURN(bool passes, PassesFilter(hit, r.filter));
    if (!passes) continue;
    hit.score = q.Double(1);
    out.push_back(std::move(hit));
  }
  return out;
}

absl::StatusOr<std::vector<ChunkHit>> SqliteKnowledgeStore::Vector(
    int64_t cid, const SearchRequest& r, int k) {
  std::vector<ChunkHit> out;
  std::shared_ptr<VectorIndex> index = FindIndex(cid);
  if (index == nullptr || embedder_ == nullptr) return out;
  // The query is embedded without any lock.
  ASSIGN_OR_RETURN(auto q, embedder_->Embed({r.query}));
  const int want = r.filter.empty() ? k : k * 8;
  const std::vector<VectorHit> found = index->Search(q[0].data(), want);
  std::lock_guard lock(db_mu_);
  for (const VectorHit& v : found) {
    absl::StatusOr<ChunkHit> hit = LoadChunk(v.label);
    // A chunk deleted since the index answered is simply not a hit.
    if (absl::IsNotFound(hit.status())) continue;
    if (!hit.ok()) return hit.status();
    ASSIGN_OR_RETURN(bool passes, PassesFilter(*hit, r.filter));
    if (!passes) continue;
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
  int64_t cid = 0;
  {
    std::lock_guard lock(db_mu_);
    ASSIGN_OR_RETURN(cid, CollectionId(collection));
  }
  SearchMode mode = r.mode;
  if (mode != SearchMode::kKeyword &&
      (embedder_ == nullptr || FindIndex(cid) == nullptr)) {
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
