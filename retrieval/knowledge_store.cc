#include "retrieval/knowledge_store.h"

#include <sys/stat.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "retrieval/knowledge_base.h"
#include "retrieval/postgres/pg_document_store.h"
#include "retrieval/sqlite/sqlite_document_store.h"

namespace lumen::retrieval {

bool IsPostgresLocation(const std::string& location) {
  return absl::StartsWith(location, "postgresql://") ||
         absl::StartsWith(location, "postgres://");
}

std::string RedactLocation(const std::string& location) {
  if (!IsPostgresLocation(location)) return location;
  std::string out = location;
  // scheme://user:password@host/...: the password lies between the first
  // ':' after the scheme and the last '@' before the path.
  const size_t start = out.find("://") + 3;
  const size_t slash = out.find('/', start);
  const size_t at = out.rfind('@', slash);
  const size_t colon = out.find(':', start);
  if (at != std::string::npos && at >= start && colon != std::string::npos &&
      colon < at) {
    out = absl::StrCat(out.substr(0, colon + 1), "***", out.substr(at));
  }
  // ...?password=secret&...
  for (size_t p = out.find("password="); p != std::string::npos;
       p = out.find("password=", p + 1)) {
    const size_t value = p + 9;
    const size_t end = std::min(out.find('&', value), out.size());
    out.replace(value, end - value, "***");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<KnowledgeStore>> KnowledgeStore::Open(
    const StoreOptions& options) {
  KnowledgeBase::Options kb;
  kb.embedder = options.embedder;
  kb.chunking = options.chunking;
  std::unique_ptr<DocumentStore> documents;
  if (IsPostgresLocation(options.location)) {
    ASSIGN_OR_RETURN(std::unique_ptr<postgres::PgDocumentStore> pg,
                     postgres::PgDocumentStore::Open(options.location));
    // Indexes of one database in their own directory: a data directory
    // pointed at another database starts afresh.
    if (!options.index_dir.empty()) {
      kb.index_dir = absl::StrCat(options.index_dir, "/pg-", pg->store_id());
      ::mkdir(options.index_dir.c_str(), 0755);
      ::mkdir(kb.index_dir.c_str(), 0755);
    }
    documents = std::move(pg);
  } else {
    ASSIGN_OR_RETURN(documents,
                     sqlite::SqliteDocumentStore::Open(options.location));
    kb.index_dir = options.location;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<KnowledgeBase> store,
                   KnowledgeBase::Create(std::move(documents), kb));
  return std::unique_ptr<KnowledgeStore>(std::move(store));
}

absl::StatusOr<std::unique_ptr<KnowledgeStore>> KnowledgeStore::Open(
    const std::string& dir, Embedder* embedder, ChunkerOptions chunking) {
  return Open(StoreOptions{dir, "", embedder, chunking});
}

}  // namespace lumen::retrieval
