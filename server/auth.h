#pragma once
// Tenants, API keys and their quotas. `--api-keys FILE` holds lines
//   KEY TENANT ROLE [LIMIT=N ...]
// (ROLE admin or user; limits as in quota.h; '#' starts a comment); clients
// send "authorization: Bearer KEY" (gRPC metadata or HTTP header). Without
// a key file every caller is the admin of the single tenant "default".
// Keys are compared in constant time (SHA-256 digests, CRYPTO_memcmp over
// every key). Reload() re-reads the file (SIGHUP) without dropping
// requests: keys that stay keep their quota state. Thread-safe.

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "retrieval/access.h"
#include "server/quota.h"

namespace lumen::server {

using retrieval::Principal;

// An authenticated caller: its tenant and role, and its key's quota (null:
// no limits).
struct Caller : Principal {
  std::shared_ptr<KeyQuota> quota;
};

class Authenticator {
 public:
  // No key file: single tenant, admin.
  Authenticator() = default;
  // InvalidArgument naming the line of a malformed file.
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromFile(
      const std::string& path);

  bool enabled() const;
  // UNAUTHENTICATED for a missing or unknown key.
  absl::StatusOr<Caller> Authenticate(
      const grpc::CallbackServerContext* ctx) const;
  // The same for an HTTP Authorization header value ("" when absent).
  absl::StatusOr<Caller> AuthenticateHeader(absl::string_view header) const;
  // Re-reads the key file: keys added, removed, limits changed. On error
  // the current keys stay and the error is returned.
  absl::Status Reload();
  // Every key's quota state (GetStats).
  std::vector<std::shared_ptr<KeyQuota>> Quotas() const;

 private:
  struct Key {
    std::array<uint8_t, 32> digest;
    Caller caller;
  };
  static absl::StatusOr<std::vector<Key>> ReadKeys(const std::string& path);

  std::string path_;
  mutable absl::Mutex mu_;
  std::vector<Key> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumen::server
