#pragma once
// DaemonProcess: runs build/bin/lumend on a free loopback port for a test,
// waits until it serves, and stops it (SIGTERM) at the end.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"

namespace lumen::testing {

class DaemonProcess {
 public:
  // Starts lumend with `args` plus --listen 127.0.0.1:0 and waits (bounded)
  // for "serving" in its log. ok() tells whether it came up.
  explicit DaemonProcess(std::vector<std::string> args);
  ~DaemonProcess();

  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  int metrics_port() const { return metrics_port_; }  // 0 when disabled
  // The OpenAI-compatible HTTP API's port: 0 unless the test passed
  // --http-listen (DaemonProcess passes --http-listen= otherwise).
  int http_port() const { return http_port_; }
  std::string address() const;
  std::shared_ptr<grpc::Channel> Channel() const;
  std::string Log() const;

  // Sends a signal; Wait() returns the exit code (or -1 when killed).
  void Signal(int sig);
  int Wait();

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  int http_port_ = 0;
  std::string log_path_;
  bool waited_ = false;
  int exit_code_ = -1;
};

// A plain HTTP/1.0 GET on loopback; returns the body ("" on failure).
std::string HttpGet(int port, const std::string& path);

}  // namespace lumen::testing
