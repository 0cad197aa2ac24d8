#include "server/http/request_socket.h"

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"

namespace lumen::server::http {

namespace {

// The port and numeric host of a socket address, as httplib reports them.
bool Describe(const sockaddr_storage& addr, socklen_t len, int* port,
              std::string* host) {
  if (addr.ss_family == AF_INET) {
    *port = ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
  } else if (addr.ss_family == AF_INET6) {
    *port = ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
  } else {
    return false;
  }
  char buf[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, buf,
                  sizeof(buf), nullptr, 0, NI_NUMERICHOST) != 0) {
    return false;
  }
  *host = buf;
  return true;
}

bool IsRequestSocket(int fd, const httplib::Request& req) {
  sockaddr_storage local{}, peer{};
  socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
      getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    return false;  // not a connected socket
  }
  int local_port = 0, peer_port = 0;
  std::string local_host, peer_host;
  return Describe(local, local_len, &local_port, &local_host) &&
         Describe(peer, peer_len, &peer_port, &peer_host) &&
         local_port == req.local_port && peer_port == req.remote_port &&
         peer_host == req.remote_addr;
}

}  // namespace

std::optional<int> RequestSocket(const httplib::Request& req) {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  if (req.ssl != nullptr) {
    const int fd = SSL_get_fd(req.ssl);
    if (fd >= 0) return fd;
    return std::nullopt;
  }
#endif
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  std::optional<int> found;
  while (dirent* entry = readdir(dir)) {
    int fd;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd == dirfd(dir)) continue;
    if (IsRequestSocket(fd, req)) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

}  // namespace lumen::server::http
