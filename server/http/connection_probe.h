#pragma once
// ConnectionProbe: whether the client of a request still holds its
// connection, for a handler that waits without writing (a non-streaming
// completion), so that a client that gives up cancels its request as a
// streaming one does. cpp-httplib 0.11 gives a handler no access to its
// socket (later versions have Request::is_connection_closed), so the probe
// finds it: the SSL object's descriptor for HTTPS, else the process's TCP
// socket whose local and peer ports and peer address are the request's
// (scanned once in /proc/self/fd). It only peeks: the worker thread serving
// the request owns the socket for as long as the handler runs. Handler
// thread only.

#include <optional>

#include "httplib.h"

namespace lumen::server::http {

class ConnectionProbe {
 public:
  // nullopt when the socket cannot be found (then nothing is probed).
  static std::optional<ConnectionProbe> For(const httplib::Request& req);

  // True once the peer closed or reset the connection. Never blocks.
  bool PeerClosed() const;

 private:
  explicit ConnectionProbe(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace lumen::server::http
