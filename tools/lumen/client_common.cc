#include "tools/lumen/client_common.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace lumen::tools {

std::string StatusCodeName(grpc::StatusCode code) {
  // gRPC's codes are Abseil's, number for number.
  std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

void ClientFlags::Register(FlagSet* flags) {
  flags->String("addr", &addr, "lumend address HOST:PORT");
  flags->String("api-key", &api_key,
                "API key (sent as 'authorization: Bearer KEY')");
  flags->Double("timeout", &timeout, "deadline in seconds (0: none)");
  flags->String("tls-ca", &tls_ca,
                "PEM CA certificates that signed lumend's certificate (TLS; "
                "default with --tls-cert: the system's)");
  flags->String("tls-cert", &tls_cert,
                "PEM client certificate for lumend's --tls-client-ca (with "
                "--tls-key)");
  flags->String("tls-key", &tls_key, "PEM private key of --tls-cert");
}

namespace {
absl::Status ReadPem(const char* flag, const std::string& path,
                     std::string* out) {
  if (path.empty()) return absl::OkStatus();
  std::ifstream in(path);
  std::stringstream ss;
  if (in) ss << in.rdbuf();
  if (!in || ss.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read --", flag, " ", path, ": ",
                     in ? "no PEM block in it" : std::strerror(errno)));
  }
  *out = ss.str();
  return absl::OkStatus();
}
}  // namespace

absl::Status ClientFlags::LoadTls() {
  if (tls_ca.empty() && tls_cert.empty() && tls_key.empty())
    return absl::OkStatus();
  if (tls_cert.empty() != tls_key.empty())
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  grpc::SslCredentialsOptions ssl;
  if (absl::Status s = ReadPem("tls-ca", tls_ca, &ssl.pem_root_certs); !s.ok())
    return s;
  if (absl::Status s = ReadPem("tls-cert", tls_cert, &ssl.pem_cert_chain);
      !s.ok())
    return s;
  if (absl::Status s = ReadPem("tls-key", tls_key, &ssl.pem_private_key);
      !s.ok())
    return s;
  tls_credentials_ = grpc::SslCredentials(ssl);
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> ClientFlags::Channel() const {
  LUMEN_CHECK(tls_credentials_ != nullptr ||
                  (tls_ca.empty() && tls_cert.empty() && tls_key.empty()),
              "ClientFlags::Channel() before LoadTls()");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(
      addr,
      tls_credentials_ ? tls_credentials_ : grpc::InsecureChannelCredentials(),
      args);
}

std::unique_ptr<grpc::ClientContext> ClientFlags::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!api_key.empty()) ctx->AddMetadata("authorization", "Bearer " + api_key);
  if (timeout > 0) {
    ctx->set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)));
  }
  return ctx;
}

int FailRpc(const grpc::Status& status) {
  std::fprintf(stderr, "lumen: %s: %s\n",
               StatusCodeName(status.error_code()).c_str(),
               status.error_message().c_str());
  return 1;
}

}  // namespace lumen::tools
