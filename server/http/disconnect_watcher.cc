#include "server/http/disconnect_watcher.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lumen::server::http {

namespace {
// The wake-up descriptor's id in epoll_event.data (Add never hands out 0).
constexpr uint64_t kWakeId = 0;
}  // namespace

DisconnectWatcher::Watch& DisconnectWatcher::Watch::operator=(
    Watch&& other) noexcept {
  if (this != &other) {
    if (watcher_ != nullptr) watcher_->Remove(id_);
    watcher_ = other.watcher_;
    id_ = other.id_;
    other.watcher_ = nullptr;
  }
  return *this;
}

DisconnectWatcher::Watch::~Watch() {
  if (watcher_ != nullptr) watcher_->Remove(id_);
}

absl::StatusOr<std::unique_ptr<DisconnectWatcher>> DisconnectWatcher::Create() {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    return absl::InternalError(
        absl::StrCat("epoll_create1: ", std::strerror(errno)));
  }
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.u64 = kWakeId;
  if (wake_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &wake) != 0) {
    const int error = errno;
    if (wake_fd >= 0) close(wake_fd);
    close(epoll_fd);
    return absl::InternalError(absl::StrCat(
        "eventfd for the disconnect watcher: ", std::strerror(error)));
  }
  return std::unique_ptr<DisconnectWatcher>(
      new DisconnectWatcher(epoll_fd, wake_fd));
}

DisconnectWatcher::DisconnectWatcher(int epoll_fd, int wake_fd)
    : epoll_fd_(epoll_fd), wake_fd_(wake_fd) {
  thread_ = std::thread([this] { Run(); });
}

DisconnectWatcher::~DisconnectWatcher() {
  const uint64_t one = 1;
  // A full counter cannot happen (written once); the thread reads no value.
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  close(wake_fd_);
  close(epoll_fd_);
}

DisconnectWatcher::Watch DisconnectWatcher::Add(
    int fd, std::function<void()> on_closed) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  epoll_event event{};
  // EPOLLRDHUP: the peer closed its side (EPOLLHUP/ERR are always reported).
  // Data the client sends (a pipelined request) does not wake the thread.
  event.events = EPOLLRDHUP | EPOLLONESHOT;
  event.data.u64 = id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) return Watch();
  entries_.emplace(id, Entry{fd, std::move(on_closed)});
  return Watch(this, id);
}

void DisconnectWatcher::Remove(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  // Under the lock, so an event already taken for this id finds no entry.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  entries_.erase(it);
}

void DisconnectWatcher::Run() {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with a valid epoll descriptor
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kWakeId) return;
      std::function<void()> on_closed;
      {
        absl::MutexLock lock(&mu_);
        auto it = entries_.find(id);
        if (it == entries_.end()) continue;  // removed meanwhile
        // One shot: the entry stays (its Watch removes it from epoll) but
        // its callback runs once.
        on_closed = std::move(it->second.on_closed);
      }
      if (on_closed) on_closed();
    }
  }
}

}  // namespace lumen::server::http
