#pragma once
// Helpers shared by tests: paths of the shared test data and status matchers.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace lumen::testing {

// Absolute path of a file under ../shared/testdata.
std::string TestDataPath(const std::string& relative);
// The build tree (for binaries such as bin/lumen).
std::string BinaryDir();
// A fresh, empty temporary directory, removed at process exit is not
// guaranteed; tests create files under it.
std::string MakeTempDir();
// Reads a whole file; empty string when it cannot be read.
std::string ReadFile(const std::string& path);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs `command` through /bin/sh with `input` on stdin.
CommandResult RunCommand(const std::string& command,
                         const std::string& input = "");
// Path of a program built into <build>/bin.
std::string BinPath(const std::string& name);
// Whether this kernel populates pages on request (lumen::PopulatePages:
// MADV_POPULATE_WRITE, Linux 5.14); where it does not, memory is backed on
// first write instead.
bool KernelPopulatesPages();

}  // namespace lumen::testing

// EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
// HasSubstr("x")))
MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = [&]() -> absl::Status {
    if constexpr (requires { arg.status(); }) {
      return arg.status();
    } else {
      return arg;
    }
  }();
  if (s.code() != code) {
    *result_listener << "status is " << s;
    return false;
  }
  return ::testing::ExplainMatchResult(
      message_matcher, std::string(s.message()), result_listener);
}
