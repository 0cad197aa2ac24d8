#include "tools/lumen/client_common.h"

#include <chrono>
#include <cstdio>

namespace lumen::tools {

namespace {
const char* CodeName(grpc::StatusCode c) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int i = static_cast<int>(c);
  return i >= 0 && i < 17 ? kNames[i] : "UNKNOWN";
}
}  // namespace

void ClientFlags::Register(FlagSet* flags) {
  flags->String("addr", &addr, "lumend address HOST:PORT");
  flags->String("api-key", &api_key,
                "API key (sent as 'authorization: Bearer KEY')");
  flags->Double("timeout", &timeout, "deadline in seconds (0: none)");
}

std::shared_ptr<grpc::Channel> ClientFlags::Channel() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(),
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
  std::fprintf(stderr, "lumen: %s: %s\n", CodeName(status.error_code()),
               status.error_message().c_str());
  return 1;
}

}  // namespace lumen::tools
