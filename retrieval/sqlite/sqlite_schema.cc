#include "retrieval/sqlite/sqlite_schema.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace lumen::retrieval::sqlite {

namespace {

// Migration N brings the schema from version N-1 to N. Version 1 is the
// schema of the first lumen releases, which had no schema_version table.
constexpr const char* kMigrations[] = {
    // 1: collections, documents, chunks (with embeddings), the trigram FTS5
    // keyword index and the change log the vector indexes follow.
    "CREATE TABLE IF NOT EXISTS collections(id INTEGER PRIMARY KEY,"
    " name TEXT UNIQUE NOT NULL, owner TEXT NOT NULL,"
    " shared_with TEXT NOT NULL DEFAULT '', dim INTEGER NOT NULL,"
    " hnsw_m INTEGER, ef_construction INTEGER, ef_search INTEGER,"
    " metric TEXT NOT NULL DEFAULT 'cosine');"
    "CREATE TABLE IF NOT EXISTS documents(collection_id INTEGER NOT NULL,"
    " doc_id TEXT NOT NULL, source TEXT, title TEXT,"
    " metadata TEXT NOT NULL DEFAULT '{}', content_hash TEXT NOT NULL,"
    " PRIMARY KEY(collection_id, doc_id));"
    "CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " collection_id INTEGER NOT NULL, doc_id TEXT NOT NULL,"
    " ord INTEGER NOT NULL, text TEXT NOT NULL, start INTEGER, end INTEGER,"
    " embedding BLOB);"
    "CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(collection_id, doc_id);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text,"
    " tokenize='trigram');"
    "CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " collection_id INTEGER NOT NULL, chunk_id INTEGER NOT NULL,"
    " op INTEGER NOT NULL);",
    // 2: the embedding model per collection, a re-embedding flag, document
    // and chunk counters (no COUNT(*) per request), and an index for the
    // per-collection change-log reads.
    "ALTER TABLE collections ADD COLUMN model_name TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE collections ADD COLUMN model_checksum TEXT NOT NULL"
    " DEFAULT '';"
    "ALTER TABLE collections ADD COLUMN reembedding INTEGER NOT NULL"
    " DEFAULT 0;"
    "ALTER TABLE collections ADD COLUMN doc_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE collections ADD COLUMN chunk_count INTEGER NOT NULL"
    " DEFAULT 0;"
    "UPDATE collections SET"
    " doc_count = (SELECT COUNT(*) FROM documents d"
    "              WHERE d.collection_id = collections.id),"
    " chunk_count = (SELECT COUNT(*) FROM chunks c"
    "                WHERE c.collection_id = collections.id);"
    "CREATE INDEX IF NOT EXISTS changes_collection ON changes(collection_id,"
    " seq);",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

absl::StatusOr<bool> TableExists(Connection* db, const char* name) {
  ASSIGN_OR_RETURN(Statement q,
                   db->Prepare("SELECT 1 FROM sqlite_master WHERE type = "
                               "'table' AND name = ?"));
  q.Bind(1, name);
  return q.Step();
}

}  // namespace

absl::Status MigrateSchema(Connection* db) {
  ASSIGN_OR_RETURN(Transaction tx,
                   Transaction::Begin(db, Transaction::Mode::kImmediate));
  int version = 0;
  ASSIGN_OR_RETURN(bool versioned, TableExists(db, "schema_version"));
  if (versioned) {
    ASSIGN_OR_RETURN(Statement q,
                     db->Prepare("SELECT MAX(version) FROM schema_version"));
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) version = static_cast<int>(q.Int(0));
  } else {
    ASSIGN_OR_RETURN(bool old, TableExists(db, "collections"));
    version = old ? 1 : 0;
    RETURN_IF_ERROR(
        db->Exec("CREATE TABLE schema_version(version INTEGER NOT NULL)"));
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the knowledge store's schema is version ", version,
        ", newer than this lumend understands (", kSchemaVersion,
        "): run a lumend at least as new as the one that wrote it"));
  }
  for (int v = version; v < kSchemaVersion; ++v) {
    RETURN_IF_ERROR(db->Exec(kMigrations[v]));
  }
  if (version < kSchemaVersion) {
    RETURN_IF_ERROR(db->Exec("DELETE FROM schema_version"));
    ASSIGN_OR_RETURN(Statement set, db->Prepare("INSERT INTO schema_version("
                                                "version) VALUES(?)"));
    RETURN_IF_ERROR(set.Bind(1, int64_t{kSchemaVersion}).Run());
  }
  return tx.Commit();
}

}  // namespace lumen::retrieval::sqlite
