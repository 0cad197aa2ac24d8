#pragma once
// Shared pieces of the `lumen` client commands: the channel to lumend, the
// per-call context (API key, deadline) and status printing.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "base/flags.h"
#include "grpcpp/grpcpp.h"

namespace lumen::tools {

struct ClientFlags {
  std::string addr = "127.0.0.1:50051";
  std::string api_key;
  double timeout = 0;  // seconds; 0: none
  // PEM files. Any of them set: TLS (--tls-ca: the CAs that signed lumend's
  // certificate, default the system's; --tls-cert/--tls-key: this client's
  // certificate, for lumend's --tls-client-ca).
  std::string tls_ca, tls_cert, tls_key;
  // Registers --addr, --api-key, --timeout and the --tls-* flags on `flags`.
  void Register(FlagSet* flags);
  // Reads the --tls-* files, after parsing and before Channel().
  // InvalidArgument naming the flag when a file cannot be read or
  // --tls-cert comes without --tls-key.
  absl::Status LoadTls();
  // A channel to --addr, over TLS when a --tls-* flag is set.
  std::shared_ptr<grpc::Channel> Channel() const;
  // A context carrying the API key and the deadline.
  std::unique_ptr<grpc::ClientContext> Context() const;

 private:
  std::shared_ptr<grpc::ChannelCredentials> tls_credentials_;
};

// "INVALID_ARGUMENT", "UNAVAILABLE", ...: the code's name in gRPC's docs.
std::string StatusCodeName(grpc::StatusCode code);

// Prints "lumen: CODE: message" and returns 1.
int FailRpc(const grpc::Status& status);

}  // namespace lumen::tools
