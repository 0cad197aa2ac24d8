#include "server/auth.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lumen::server {

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat("cannot read api keys file ", path));
  auto a = std::make_unique<Authenticator>();
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (size_t hash = line.find('#'); hash != std::string::npos)
      line.resize(hash);
    std::vector<std::string> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.empty()) continue;
    if (f.size() != 3 || (f[2] != "admin" && f[2] != "user")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n,
                       ": expected 'KEY TENANT ROLE' with ROLE admin or user"));
    }
    a->keys_[f[0]] = Principal{f[1], f[2] == "admin"};
  }
  if (a->keys_.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no keys"));
  return a;
}

absl::StatusOr<Principal> Authenticator::Authenticate(
    const grpc::CallbackServerContext* ctx) const {
  if (keys_.empty()) return Principal{"default", true};
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return AuthenticateBearer(std::nullopt);
  return AuthenticateBearer(
      absl::string_view(it->second.data(), it->second.size()));
}

absl::StatusOr<Principal> Authenticator::AuthenticateBearer(
    std::optional<absl::string_view> authorization) const {
  if (keys_.empty()) return Principal{"default", true};
  if (!authorization) {
    return absl::UnauthenticatedError(
        "missing 'authorization: Bearer KEY' (gRPC metadata or HTTP header)");
  }
  absl::string_view value = *authorization;
  // The scheme is case-insensitive (RFC 9110 section 11.1).
  if (value.size() < 7 ||
      !absl::EqualsIgnoreCase(value.substr(0, 7), "Bearer ")) {
    return absl::UnauthenticatedError("authorization must be 'Bearer KEY'");
  }
  value.remove_prefix(7);
  auto key = keys_.find(std::string(value));
  if (key == keys_.end()) return absl::UnauthenticatedError("unknown API key");
  return key->second;
}

}  // namespace lumen::server
