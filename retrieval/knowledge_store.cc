#include "retrieval/knowledge_store.h"

#include "absl/strings/match.h"
#include "base/status_macros.h"
#include "retrieval/knowledge_base.h"
#include "retrieval/sqlite/sqlite_document_store.h"

namespace lumen::retrieval {

bool IsPostgresLocation(const std::string& location) {
  return absl::StartsWith(location, "postgresql://") ||
         absl::StartsWith(location, "postgres://");
}

absl::StatusOr<std::unique_ptr<KnowledgeStore>> KnowledgeStore::Open(
    const StoreOptions& options) {
  KnowledgeBase::Options kb;
  kb.embedder = options.embedder;
  kb.chunking = options.chunking;
  std::unique_ptr<DocumentStore> documents;
  if (IsPostgresLocation(options.location)) {
    return absl::UnimplementedError("PostgreSQL backend not built yet");
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
