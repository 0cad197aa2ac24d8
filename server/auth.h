#pragma once
// Tenants and API keys. `--api-keys FILE` holds "KEY TENANT ROLE" lines (ROLE
// admin or user, '#' starts a comment); clients send
// "authorization: Bearer KEY" (gRPC metadata or the HTTP header: both front
// ends share the keys and tenants). Without a key file every caller is the
// admin of the single tenant "default".

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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
  // The same for the value of an `authorization` header or metadata entry
  // ("Bearer KEY"; nullopt when the request has none). Thread-safe.
  absl::StatusOr<Principal> AuthenticateBearer(
      std::optional<absl::string_view> authorization) const;

 private:
  std::map<std::string, Principal> keys_;
};

}  // namespace lumen::server
