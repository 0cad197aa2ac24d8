#pragma once
// DisconnectWatcher: one thread that learns, from the kernel, when a client
// closes a connection whose request is still being generated, so that the
// request is cancelled at once without any worker polling its socket. The
// HTTP workers wait for output without timers; a polling wait woke every
// waiting worker 50 times a second, and on a 2-core machine each wake-up
// preempts an engine thread in the middle of a parallel step.
//
// Watch() registers a connected socket for EPOLLRDHUP/EPOLLHUP (one shot);
// the returned Watch handle unregisters it when destroyed, which must happen
// before the socket is closed (the worker serving the request owns it and
// closes it only after the response ends). on_closed runs on the watcher's
// thread, at most once, possibly just after the handle was destroyed: it
// must only hold weak references.

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace lumen::server::http {

class DisconnectWatcher {
 public:
  // Unregisters its socket when destroyed. Move-only.
  class Watch {
   public:
    Watch() = default;
    Watch(Watch&& other) noexcept { *this = std::move(other); }
    Watch& operator=(Watch&& other) noexcept;
    ~Watch();

   private:
    friend class DisconnectWatcher;
    Watch(DisconnectWatcher* watcher, uint64_t id)
        : watcher_(watcher), id_(id) {}
    DisconnectWatcher* watcher_ = nullptr;
    uint64_t id_ = 0;
  };

  // Internal when epoll or the wake-up descriptor cannot be made.
  static absl::StatusOr<std::unique_ptr<DisconnectWatcher>> Create();
  ~DisconnectWatcher();  // joins the thread; every Watch must be gone

  // Any thread. An empty handle when `fd` cannot be watched (then nothing
  // notices the client leaving before the next write).
  Watch Add(int fd, std::function<void()> on_closed) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  DisconnectWatcher(int epoll_fd, int wake_fd);
  void Remove(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  void Run();

  struct Entry {
    int fd;
    std::function<void()> on_closed;
  };
  const int epoll_fd_;
  const int wake_fd_;  // an eventfd: written once to stop the thread
  absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace lumen::server::http
