#pragma once
// Tenant access to collections: a caller (principal) reads the collections
// its tenant owns or that are shared with it, writes the ones it owns;
// admins read and write everything. Shared by every front end (gRPC, HTTP)
// and by RAG. Pure functions, thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "retrieval/knowledge_store.h"

namespace lumen::retrieval {

// Who is asking: a tenant, and whether it administers all tenants.
struct Principal {
  std::string tenant;
  bool admin = false;
};

// Read access: owner, tenants it is shared with, admins.
bool CanRead(const Principal& p, const CollectionInfo& c);
// Write access (documents, deletion, re-embedding): owner and admins.
bool CanWrite(const Principal& p, const CollectionInfo& c);

// PERMISSION_DENIED naming the collection: the same error whether or not it
// exists, so that tenants learn nothing about each other's collections.
absl::Status Forbidden(const std::string& collection);

// The collection if `p` may read it (or write it, with `write`): Forbidden
// otherwise, and for a missing collection unless `p` is an admin (who gets
// NOT_FOUND). Other store errors (UNAVAILABLE, ...) pass through.
absl::StatusOr<CollectionInfo> AuthorizeCollection(const KnowledgeStore& store,
                                                   const Principal& p,
                                                   const std::string& name,
                                                   bool write);

}  // namespace lumen::retrieval
