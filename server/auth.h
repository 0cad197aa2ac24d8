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
#include "retrieval/access.h"

namespace lumen::server {

using retrieval::Principal;

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

}  // namespace lumen::server
