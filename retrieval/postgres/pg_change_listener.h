#pragma once
// PgChangeListener: the thread that keeps a replica current. It holds its
// own connection with LISTEN lumen_changes; writers NOTIFY the collection id
// in the same transaction as their change-log rows (0 when collections were
// created, deleted or re-embedded), so the notification arrives right after
// the commit. A lost connection is reopened with backoff; after that the
// owner is told to catch up everything (notifications sent while
// disconnected are lost, the change log is not). Every `poll` interval
// without notifications it also asks for a full catch-up, a safety net that
// bounds the staleness should a notification ever go missing.
//
// Threads: the callbacks run on the listener thread; Stop() (or the
// destructor) returns after the last one has finished.

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace lumen::retrieval::postgres {

// The channel writers notify.
inline constexpr const char* kChangeChannel = "lumen_changes";

class PgChangeListener {
 public:
  PgChangeListener(std::string uri, std::function<void(int64_t)> on_change,
                   std::function<void()> on_reconnect,
                   std::chrono::milliseconds poll = std::chrono::seconds(30));
  ~PgChangeListener();

  // Starts the thread (connecting in it, so a database that is down now does
  // not fail the start).
  absl::Status Start();
  void Stop();

 private:
  void Run();
  // Waits up to `timeout` unless stopping; true when stopping.
  bool WaitOrStop(std::chrono::milliseconds timeout);

  const std::string uri_;
  const std::function<void(int64_t)> on_change_;
  const std::function<void()> on_reconnect_;
  const std::chrono::milliseconds poll_;
  int wake_[2] = {-1, -1};  // a pipe: Stop() writes to wake poll()
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace lumen::retrieval::postgres
