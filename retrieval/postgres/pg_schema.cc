#include "retrieval/postgres/pg_schema.h"

#include <iterator>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace lumen::retrieval::postgres {

namespace {

// Any constant: the advisory lock that serializes migrations.
constexpr int64_t kMigrationLock = 0x6c756d656e;  // "lumen"

// Migration N brings the schema from version N-1 to N.
constexpr const char* kMigrations[] = {
    // 1: collections (with the per-collection change sequence and the
    // embedding model), documents (metadata kept as given, checked as
    // jsonb), chunks with embeddings (float32 bytes) and keyword terms, and
    // the change log the replicas' vector indexes follow.
    //
    // Keyword search: the terms are computed by lumend (KeywordTerms:
    // lowercased words, CJK character bigrams) and stored as a tsvector
    // with positions, searched through a GIN index with @@ and ranked by
    // ts_rank. This needs no extension, and unlike pg_trgm or to_tsvector
    // it does not depend on the database's locale (under the C locale
    // pg_trgm ignores Chinese characters, and no built-in text search
    // configuration segments Chinese); bigrams also match two-character
    // Chinese words, which trigrams cannot.
    "CREATE TABLE lumen_meta(key text PRIMARY KEY, value text NOT NULL);"
    "INSERT INTO lumen_meta VALUES('store_id', gen_random_uuid()::text);"
    "CREATE TABLE collections("
    " id bigserial PRIMARY KEY, name text UNIQUE NOT NULL,"
    " owner text NOT NULL, shared_with text[] NOT NULL DEFAULT '{}',"
    " dim integer NOT NULL, hnsw_m integer NOT NULL,"
    " ef_construction integer NOT NULL, ef_search integer NOT NULL,"
    " metric text NOT NULL, model_name text NOT NULL DEFAULT '',"
    " model_checksum text NOT NULL DEFAULT '',"
    " reembedding boolean NOT NULL DEFAULT false,"
    " doc_count bigint NOT NULL DEFAULT 0,"
    " chunk_count bigint NOT NULL DEFAULT 0,"
    " last_seq bigint NOT NULL DEFAULT 0);"
    "CREATE TABLE documents("
    " collection_id bigint NOT NULL REFERENCES collections ON DELETE CASCADE,"
    " doc_id text NOT NULL, source text NOT NULL, title text NOT NULL,"
    " metadata text NOT NULL, content_hash text NOT NULL,"
    " PRIMARY KEY(collection_id, doc_id));"
    "CREATE TABLE chunks("
    " id bigserial PRIMARY KEY, collection_id bigint NOT NULL,"
    " doc_id text NOT NULL, ord integer NOT NULL, text text NOT NULL,"
    " start_byte bigint NOT NULL, end_byte bigint NOT NULL,"
    " embedding bytea, terms tsvector NOT NULL,"
    " FOREIGN KEY(collection_id, doc_id) REFERENCES documents"
    "   ON DELETE CASCADE);"
    "CREATE INDEX chunks_doc ON chunks(collection_id, doc_id);"
    "CREATE INDEX chunks_collection ON chunks(collection_id, id);"
    "CREATE INDEX chunks_terms ON chunks USING gin(terms);"
    "CREATE TABLE changes("
    " collection_id bigint NOT NULL REFERENCES collections ON DELETE CASCADE,"
    " seq bigint NOT NULL, chunk_id bigint NOT NULL,"
    " removed boolean NOT NULL, PRIMARY KEY(collection_id, seq));",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

}  // namespace

absl::StatusOr<std::string> MigrateSchema(Connection* db) {
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  RETURN_IF_ERROR(db->QueryOnce("SELECT pg_advisory_xact_lock($1)",
                                Params().Add(kMigrationLock))
                      .status());
  RETURN_IF_ERROR(
      db->Exec("CREATE TABLE IF NOT EXISTS lumen_schema_version(version "
               "integer NOT NULL)"));
  ASSIGN_OR_RETURN(Result v,
                   db->QueryOnce("SELECT COALESCE(MAX(version), 0) FROM "
                                 "lumen_schema_version"));
  const int version = static_cast<int>(v.Int(0, 0));
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the knowledge store's schema is version ", version,
        ", newer than this lumend understands (", kSchemaVersion,
        "): run a lumend at least as new as the one that wrote it"));
  }
  for (int i = version; i < kSchemaVersion; ++i) {
    RETURN_IF_ERROR(db->Exec(kMigrations[i]));
  }
  if (version < kSchemaVersion) {
    RETURN_IF_ERROR(db->Exec("DELETE FROM lumen_schema_version"));
    RETURN_IF_ERROR(db->QueryOnce("INSERT INTO lumen_schema_version "
                                  "VALUES($1)",
                                  Params().Add(int64_t{kSchemaVersion}))
                        .status());
  }
  ASSIGN_OR_RETURN(Result id,
                   db->QueryOnce("SELECT value FROM lumen_meta WHERE key = "
                                 "'store_id'"));
  if (id.rows() != 1) {
    return absl::DataLossError("lumen_meta has no store_id");
  }
  std::string store_id(id.Text(0, 0));
  RETURN_IF_ERROR(tx.Commit());
  return store_id;
}

}  // namespace lumen::retrieval::postgres
