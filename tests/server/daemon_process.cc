#include "tests/server/daemon_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include "tests/test_support.h"

namespace lumen::testing {

DaemonProcess::DaemonProcess(std::vector<std::string> args) {
  log_path_ = MakeTempDir() + "/lumend.log";
  args.insert(args.begin(), BinPath("lumend"));
  args.push_back("--listen=127.0.0.1:0");
  bool has_metrics = false;
  for (const std::string& a : args)
    has_metrics |= a.rfind("--metrics-listen", 0) == 0;
  if (!has_metrics) args.push_back("--metrics-listen=");
  // The HTTP API's default port would collide between daemons: off unless
  // a test asks for it (then the log gives its port).
  bool has_http = false;
  for (const std::string& a : args)
    has_http |= a.rfind("--http-listen", 0) == 0;
  if (!has_http) args.push_back("--http-listen=");
  bool has_data_dir = false;
  for (const std::string& a : args)
    has_data_dir |= a.rfind("--data-dir", 0) == 0;
  if (!has_data_dir) args.push_back("--data-dir=" + MakeTempDir());
  pid_ = fork();
  if (pid_ == 0) {
    const int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // Bounded wait for the daemon to listen and load its models.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(120);
  const std::regex listening("listening on 127\\.0\\.0\\.1:([0-9]+)");
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string log = Log();
    std::smatch m;
    if (log.find("serving") != std::string::npos &&
        std::regex_search(log, m, listening)) {
      port_ = std::stoi(m[1]);
      std::smatch mm;
      if (std::regex_search(
              log, mm,
              std::regex("metrics on http://127\\.0\\.0\\.1:([0-9]+)"))) {
        metrics_port_ = std::stoi(mm[1]);
      }
      if (std::regex_search(
              log, mm,
              std::regex("HTTP API on https?://127\\.0\\.0\\.1:([0-9]+)"))) {
        http_port_ = std::stoi(mm[1]);
      }
      return;
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      waited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && !waited_) {
    kill(pid_, SIGTERM);
    Wait();
  }
}

std::string DaemonProcess::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

std::shared_ptr<grpc::Channel> DaemonProcess::Channel() const {
  return grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
}

std::string DaemonProcess::Log() const { return ReadFile(log_path_); }

void DaemonProcess::Signal(int sig) {
  if (pid_ > 0 && !waited_) kill(pid_, sig);
}

int DaemonProcess::Wait() {
  if (waited_) return exit_code_;
  // Bounded: SIGKILL after 60 s.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  waited_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return exit_code_;
}

// A plain HTTP/1.0 GET on loopback; returns the body.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string req =
      "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) resp.append(buf, n);
  close(fd);
  const size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

}  // namespace lumen::testing
