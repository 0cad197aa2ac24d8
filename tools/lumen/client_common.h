#pragma once
// Shared pieces of the `lumen` client commands: the channel to lumend, the
// per-call context (API key, deadline) and status printing.

#include <memory>
#include <string>

#include "base/flags.h"
#include "grpcpp/grpcpp.h"

namespace lumen::tools {

struct ClientFlags {
  std::string addr = "127.0.0.1:50051";
  std::string api_key;
  double timeout = 0;  // seconds; 0: none
  // Registers --addr, --api-key and --timeout on `flags`.
  void Register(FlagSet* flags);
  std::shared_ptr<grpc::Channel> Channel() const;
  // A context carrying the API key and the deadline.
  std::unique_ptr<grpc::ClientContext> Context() const;
};

// Prints "lumen: CODE: message" and returns 1.
int FailRpc(const grpc::Status& status);

}  // namespace lumen::tools
