#include "server/parse_checked_service.h"

#include "absl/strings/str_cat.h"

namespace lumen::server {

grpc::Status UnparsableRequestStatus(
    const google::protobuf::MethodDescriptor& method) {
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      absl::StrCat("the request to /", method.service()->full_name(), "/",
                   method.name(), " could not be parsed as ",
                   method.input_type()->full_name(),
                   ": malformed protobuf bytes, or a string field that is not "
                   "valid UTF-8"));
}

namespace internal {

const google::protobuf::ServiceDescriptor& FindService(
    std::string_view full_name) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(full_name));
  if (service == nullptr) {
    ABSL_RAW_LOG(FATAL, "no generated descriptor for %s",
                 std::string(full_name).c_str());
  }
  return *service;
}

}  // namespace internal
}  // namespace lumen::server
