#pragma once
// Tenants and API keys. `--api-keys FILE` holds "KEY TENANT ROLE" lines (ROLE
// admin or user, '#' starts a comment); clients send
// "authorization: Bearer KEY". Without a key file every caller is the admin
// of the single tenant "default".

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "retrieval/knowledge_store.h"

namespace lumen::server {

struct Principal {
  std::string tenant;
  bool admin = false;
};

class Authenticator {
 public:
  // No key file: single tenant, admin.
  Authenticator() = default;
  // InvalidArgument naming the line of a malformed file.
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromFile(
      const std::string& path);

  bool enabled() const { return !keys_.empty(); }
  // UNAUTHENTICATED for a missing or unknown key. Thread-safe.
  absl::StatusOr<Principal> Authenticate(
      const grpc::CallbackServerContext* ctx) const;

 private:
  std::map<std::string, Principal> keys_;
};

// Read access: owner, tenants it is shared with, admins.
bool CanRead(const Principal& p, const retrieval::CollectionInfo& c);
// Write access (documents, deletion): owner and admins.
bool CanWrite(const Principal& p, const retrieval::CollectionInfo& c);

// The same error whether or not the collection exists, so that tenants learn
// nothing about each other's collections.
absl::Status Forbidden(const std::string& collection);

}  // namespace lumen::server
