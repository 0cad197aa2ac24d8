#include "retrieval/postgres/pg_change_listener.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lumen::retrieval::postgres {

PgChangeListener::PgChangeListener(std::string uri,
                                   std::function<void(int64_t)> on_change,
                                   std::function<void()> on_reconnect,
                                   std::chrono::milliseconds poll)
    : uri_(std::move(uri)),
      on_change_(std::move(on_change)),
      on_reconnect_(std::move(on_reconnect)),
      poll_(poll) {}

PgChangeListener::~PgChangeListener() { Stop(); }

absl::Status PgChangeListener::Start() {
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError("cannot create the listener's wake-up pipe");
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void PgChangeListener::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  const char byte = 1;
  (void)!write(wake_[1], &byte, 1);
  thread_.join();
  close(wake_[0]);
  close(wake_[1]);
}

bool PgChangeListener::WaitOrStop(std::chrono::milliseconds timeout) {
  pollfd fd{wake_[0], POLLIN, 0};
  poll(&fd, 1, static_cast<int>(timeout.count()));
  return stopping_.load();
}

void PgChangeListener::Run() {
  std::chrono::milliseconds backoff(100);
  while (!stopping_.load()) {
    const char* keys[] = {"connect_timeout",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "application_name",
                          "dbname",
                          nullptr};
    const char* values[] = {"3",          "10",   "5", "3", "lumend-listener",
                            uri_.c_str(), nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    bool listening = false;
    if (PQstatus(conn) == CONNECTION_OK) {
      PGresult* r =
          PQexec(conn, absl::StrCat("LISTEN ", kChangeChannel).c_str());
      listening = PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
    }
    if (!listening) {
      PQfinish(conn);
      // Down: try again later, a little later each time (at most 5 s).
      if (WaitOrStop(backoff)) return;
      backoff = std::min<std::chrono::milliseconds>(backoff * 2,
                                                    std::chrono::seconds(5));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    // Changes committed while this connection was not listening are in the
    // log: catch up on everything (also at the very start, after the
    // store's own initial catch-up, to close the gap before LISTEN).
    on_reconnect_();
    auto last_poll = std::chrono::steady_clock::now();
    while (!stopping_.load()) {
      pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_[0], POLLIN, 0}};
      const auto until_poll =
          poll_ - std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - last_poll);
      const int ready = poll(fds, 2, std::max<int>(0, until_poll.count()));
      if (stopping_.load()) break;
      if (ready == 0) {
        on_reconnect_();  // the safety net
        last_poll = std::chrono::steady_clock::now();
        continue;
      }
      if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) break;
      while (PGnotify* n = PQnotifies(conn)) {
        int64_t collection = 0;
        if (absl::SimpleAtoi(n->extra, &collection)) on_change_(collection);
        PQfreemem(n);
      }
    }
    PQfinish(conn);
  }
}

}  // namespace lumen::retrieval::postgres
