#pragma once
// PgServer: a real PostgreSQL 15 for tests (Debian's postgresql-15: initdb
// and pg_ctl under /usr/lib/postgresql/15/bin), in a temporary data
// directory, on a free loopback port, with trust authentication for the
// user "lumen". Run as the unprivileged "postgres" user when the tests run as
// root (PostgreSQL refuses to run as root). Stopped and removed on
// destruction. Shared by the store suite and the daemon integration tests.

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace lumen::testing {

class PgServer {
 public:
  // Initializes and starts a server. Unavailable when PostgreSQL 15 is not
  // installed or does not start (the log is in the message).
  static absl::StatusOr<std::unique_ptr<PgServer>> Start();
  // One server for the whole test process, started on first use (nullptr
  // when it cannot start; `why` gets the reason).
  static PgServer* Shared(std::string* why = nullptr);
  ~PgServer();

  // A connection URI for database `db` (e.g. for lumend
  // --knowledge-store).
  std::string Uri(const std::string& db) const;
  // Creates an empty database with a fresh name and returns its name.
  absl::StatusOr<std::string> CreateDatabase();
  // Runs SQL on database `db` (as the superuser "lumen").
  absl::Status Exec(const std::string& db, const std::string& sql) const;

  // Stops the server (fast shutdown: clients are disconnected) and starts
  // it again on the same port and data.
  absl::Status Stop();
  absl::Status Restart();
  int port() const { return port_; }

 private:
  PgServer() = default;
  // Runs a PostgreSQL program as the server's user; returns its output.
  absl::StatusOr<std::string> Run(const std::string& command) const;
  absl::Status StartServer();

  std::string root_;  // temporary directory: data/, socket/, log
  int port_ = 0;
  bool running_ = false;
  int next_database_ = 0;
};

}  // namespace lumen::testing
