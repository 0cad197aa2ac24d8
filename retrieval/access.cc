#include "retrieval/access.h"

#include "absl/strings/str_cat.h"

namespace lumen::retrieval {

bool CanRead(const Principal& p, const CollectionInfo& c) {
  if (p.admin || c.owner == p.tenant) return true;
  for (const std::string& t : c.shared_with) {
    if (t == p.tenant) return true;
  }
  return false;
}

bool CanWrite(const Principal& p, const CollectionInfo& c) {
  return p.admin || c.owner == p.tenant;
}

absl::Status Forbidden(const std::string& collection) {
  return absl::PermissionDeniedError(
      absl::StrCat("permission denied for collection '", collection, "'"));
}

absl::StatusOr<CollectionInfo> AuthorizeCollection(const KnowledgeStore& store,
                                                   const Principal& p,
                                                   const std::string& name,
                                                   bool write) {
  absl::StatusOr<CollectionInfo> info = store.GetCollection(name);
  if (absl::IsNotFound(info.status())) {
    // Only admins may learn that a collection does not exist.
    return p.admin ? info.status() : Forbidden(name);
  }
  if (!info.ok()) return info.status();
  if (write ? !CanWrite(p, *info) : !CanRead(p, *info)) return Forbidden(name);
  return info;
}

}  // namespace lumen::retrieval
