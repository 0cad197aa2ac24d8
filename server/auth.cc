#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lumen::server {

namespace {

std::array<uint8_t, 32> Digest(absl::string_view key) {
  std::array<uint8_t, 32> d;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(),
         d.data());
  return d;
}

std::string Fingerprint(const std::array<uint8_t, 32>& d) {
  std::string hex;
  for (int i = 0; i < 6; ++i) absl::StrAppendFormat(&hex, "%02x", d[i]);
  return hex;
}

}  // namespace

absl::StatusOr<std::vector<Authenticator::Key>> Authenticator::ReadKeys(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read api keys file ", path));
  }
  std::vector<Key> keys;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (size_t hash = line.find('#'); hash != std::string::npos)
      line.resize(hash);
    std::vector<std::string> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.empty()) continue;
    if (f.size() < 3 || (f[2] != "admin" && f[2] != "user")) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", n,
          ": expected 'KEY TENANT ROLE [LIMIT=N ...]' with ROLE admin or "
          "user"));
    }
    QuotaLimits limits;
    for (size_t i = 3; i < f.size(); ++i) {
      if (absl::Status s = ParseQuotaField(f[i], &limits); !s.ok())
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", n, ": ", s.message()));
    }
    Key key;
    key.digest = Digest(f[0]);
    for (const Key& other : keys) {
      if (other.digest == key.digest) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", n, ": the same key appears twice"));
      }
    }
    key.caller.tenant = f[1];
    key.caller.admin = f[2] == "admin";
    key.caller.quota =
        std::make_shared<KeyQuota>(f[1], Fingerprint(key.digest), limits);
    keys.push_back(std::move(key));
  }
  if (keys.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no keys"));
  return keys;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromFile(
    const std::string& path) {
  auto keys = ReadKeys(path);
  if (!keys.ok()) return keys.status();
  auto a = std::make_unique<Authenticator>();
  a->path_ = path;
  absl::MutexLock lock(&a->mu_);
  a->keys_ = std::move(*keys);
  return a;
}

bool Authenticator::enabled() const {
  absl::MutexLock lock(&mu_);
  return !keys_.empty();
}

absl::Status Authenticator::Reload() {
  if (path_.empty()) return absl::FailedPreconditionError("no --api-keys file");
  auto fresh = ReadKeys(path_);
  if (!fresh.ok()) return fresh.status();
  absl::MutexLock lock(&mu_);
  // Keys that stay keep their quota state (in-flight leases, buckets).
  for (Key& k : *fresh) {
    for (const Key& old : keys_) {
      if (old.digest == k.digest) {
        old.caller.quota->SetLimits(k.caller.quota->limits());
        k.caller.quota = old.caller.quota;
        break;
      }
    }
  }
  keys_ = std::move(*fresh);
  return absl::OkStatus();
}

absl::StatusOr<Caller> Authenticator::AuthenticateHeader(
    absl::string_view header) const {
  absl::MutexLock lock(&mu_);
  if (keys_.empty()) {
    Caller c;
    c.tenant = "default";
    c.admin = true;
    return c;
  }
  if (header.empty()) {
    return absl::UnauthenticatedError(
        "missing 'authorization: Bearer KEY' (gRPC metadata or HTTP header)");
  }
  // The scheme is case-insensitive (RFC 9110 section 11.1).
  if (header.size() < 7 ||
      !absl::EqualsIgnoreCase(header.substr(0, 7), "Bearer ")) {
    return absl::UnauthenticatedError("authorization must be 'Bearer KEY'");
  }
  header.remove_prefix(7);
  // Every key is compared, digest against digest: the time taken says
  // nothing about which key matched or how much of it.
  const std::array<uint8_t, 32> digest = Digest(header);
  const Key* match = nullptr;
  for (const Key& k : keys_) {
    if (CRYPTO_memcmp(k.digest.data(), digest.data(), digest.size()) == 0)
      match = &k;
  }
  if (match == nullptr) return absl::UnauthenticatedError("unknown API key");
  return match->caller;
}

absl::StatusOr<Caller> Authenticator::Authenticate(
    const grpc::CallbackServerContext* ctx) const {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  return AuthenticateHeader(
      it == md.end() ? absl::string_view()
                     : absl::string_view(it->second.data(), it->second.size()));
}

std::vector<std::shared_ptr<KeyQuota>> Authenticator::Quotas() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<KeyQuota>> out;
  for (const Key& k : keys_) out.push_back(k.caller.quota);
  return out;
}

}  // namespace lumen::server
