#pragma once
// RequestSocket: the connected socket a request arrived on, so that the
// DisconnectWatcher can learn when its client leaves. cpp-httplib 0.11 gives
// a handler no access to its socket (later versions have
// Request::is_connection_closed), so it is found: the SSL object's
// descriptor for HTTPS, else the process's TCP socket whose local and peer
// ports and peer address are the request's (one scan of /proc/self/fd). The
// worker thread serving the request owns the socket while the handler and
// its response run; callers only watch it. Handler thread only.

#include <optional>

#include "httplib.h"

namespace lumen::server::http {

// nullopt when the socket cannot be found.
std::optional<int> RequestSocket(const httplib::Request& req);

}  // namespace lumen::server::http
