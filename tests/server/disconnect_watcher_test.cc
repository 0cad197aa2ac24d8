#include "server/http/disconnect_watcher.h"

#include <sys/socket.h>
#include <unistd.h>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lumen::server::http {
namespace {

// A connected pair of stream sockets, closed at the end of the test.
struct SocketPair {
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0); }
  ~SocketPair() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
  void ClosePeer() {
    close(fd[1]);
    fd[1] = -1;
  }
  int fd[2] = {-1, -1};
};

TEST(DisconnectWatcherTest, PeerCloseRunsTheCallbackOnce) {
  auto watcher = DisconnectWatcher::Create();
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  SocketPair pair;
  absl::Notification closed;
  int calls = 0;
  DisconnectWatcher::Watch watch = (*watcher)->Add(pair.fd[0], [&] {
    ++calls;
    closed.Notify();
  });
  pair.ClosePeer();
  ASSERT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(30)));
  watch = DisconnectWatcher::Watch();  // unregisters; joins nothing
  EXPECT_EQ(calls, 1);
}

TEST(DisconnectWatcherTest, HalfCloseCountsAsLeaving) {
  auto watcher = DisconnectWatcher::Create();
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  SocketPair pair;
  absl::Notification closed;
  DisconnectWatcher::Watch watch =
      (*watcher)->Add(pair.fd[0], [&] { closed.Notify(); });
  ASSERT_EQ(shutdown(pair.fd[1], SHUT_WR), 0);
  EXPECT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(DisconnectWatcherTest, EachSocketHasItsOwnCallback) {
  auto watcher = DisconnectWatcher::Create();
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  SocketPair first, second;
  absl::Notification first_closed, second_closed;
  DisconnectWatcher::Watch a =
      (*watcher)->Add(first.fd[0], [&] { first_closed.Notify(); });
  DisconnectWatcher::Watch b =
      (*watcher)->Add(second.fd[0], [&] { second_closed.Notify(); });
  second.ClosePeer();
  ASSERT_TRUE(second_closed.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_FALSE(first_closed.HasBeenNotified());
  first.ClosePeer();
  EXPECT_TRUE(first_closed.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(DisconnectWatcherTest, ADescriptorThatCannotBeWatchedGivesAnEmptyWatch) {
  auto watcher = DisconnectWatcher::Create();
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  bool called = false;
  // -1 is not a descriptor: epoll refuses it and nothing is registered.
  DisconnectWatcher::Watch watch = (*watcher)->Add(-1, [&] { called = true; });
  watch = DisconnectWatcher::Watch();
  watcher->reset();  // joins the thread: no callback can be pending
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace lumen::server::http
