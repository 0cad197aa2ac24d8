#pragma once
// The one place that maps absl::Status to grpc::Status.

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace lumen::server {

grpc::Status ToGrpc(const absl::Status& status);
// "OK", "INVALID_ARGUMENT", ...: the label of a status code in logs and
// metrics.
const char* CodeName(absl::StatusCode code);

}  // namespace lumen::server
