#include "tests/pg_server.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "tests/test_support.h"

namespace lumen::testing {

namespace {

constexpr const char* kBin = "/usr/lib/postgresql/15/bin";

// A port that was free a moment ago (bound to port 0, then released).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

absl::StatusOr<std::string> PgServer::Run(const std::string& command) const {
  // PostgreSQL refuses to run as root: drop to the package's "postgres"
  // user (a plain user runs it as itself).
  const std::string as_user =
      geteuid() == 0 ? "runuser -u postgres -- " : std::string();
  CommandResult r = RunCommand(as_user + command);
  if (r.exit_code != 0) {
    return absl::UnavailableError(absl::StrCat("`", command, "` failed (",
                                               r.exit_code, "): ", r.out, r.err,
                                               ReadFile(root_ + "/log")));
  }
  return r.out;
}

absl::StatusOr<std::unique_ptr<PgServer>> PgServer::Start() {
  if (access(absl::StrCat(kBin, "/pg_ctl").c_str(), X_OK) != 0) {
    return absl::UnavailableError(
        absl::StrCat("PostgreSQL 15 is not installed (", kBin, "/pg_ctl)"));
  }
  std::unique_ptr<PgServer> pg(new PgServer());
  pg->root_ = MakeTempDir();
  if (geteuid() == 0) {
    RunCommand("chown postgres " + pg->root_);
  }
  // C locale on purpose: keyword search must not depend on the database's
  // locale (see retrieval/postgres/).
  auto init = pg->Run(absl::StrCat(kBin, "/initdb -D ", pg->root_,
                                   "/data -U lumen --auth=trust -E UTF8 "
                                   "--locale=C --no-sync"));
  if (!init.ok()) return init.status();
  // The port was free a moment ago; another test (ctest -j) may take it
  // before PostgreSQL binds it, so a failed start tries another port.
  for (int attempt = 1;; ++attempt) {
    pg->port_ = FreePort();
    const absl::Status s = pg->StartServer();
    if (s.ok()) break;
    if (attempt == 3) return s;
  }
  return pg;
}

absl::Status PgServer::StartServer() {
  const std::string socket_dir = root_ + "/socket";
  RunCommand(absl::StrCat(geteuid() == 0 ? "runuser -u postgres -- " : "",
                          "mkdir -p ", socket_dir));
  auto started = Run(absl::StrCat(
      kBin, "/pg_ctl -D ", root_, "/data -l ", root_, "/log -w -t 60 -o '-p ",
      port_, " -k ", socket_dir,
      " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200' "
      "start"));
  if (!started.ok()) return started.status();
  running_ = true;
  return absl::OkStatus();
}

PgServer* PgServer::Shared(std::string* why) {
  static std::mutex mu;
  static std::unique_ptr<PgServer> shared;
  static std::string error;
  static bool tried = false;
  std::lock_guard lock(mu);
  if (!tried) {
    tried = true;
    auto pg = Start();
    if (pg.ok()) {
      shared = std::move(*pg);
    } else {
      error = std::string(pg.status().message());
    }
  }
  if (why) *why = error;
  return shared.get();
}

PgServer::~PgServer() {
  (void)Stop();
  RunCommand("rm -rf " + root_);
}

std::string PgServer::Uri(const std::string& db) const {
  return absl::StrCat("postgresql://lumen@127.0.0.1:", port_, "/", db);
}

absl::Status PgServer::Exec(const std::string& db,
                            const std::string& sql) const {
  PGconn* conn = PQconnectdb(Uri(db).c_str());
  absl::Status status;
  if (PQstatus(conn) != CONNECTION_OK) {
    status = absl::UnavailableError(PQerrorMessage(conn));
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      status = absl::InternalError(PQresultErrorMessage(r));
    }
    PQclear(r);
  }
  PQfinish(conn);
  return status;
}

absl::StatusOr<std::string> PgServer::CreateDatabase() {
  const std::string name =
      absl::StrCat("test_", getpid(), "_", next_database_++);
  if (absl::Status s = Exec("postgres", "CREATE DATABASE " + name); !s.ok())
    return s;
  return name;
}

absl::Status PgServer::Stop() {
  if (!running_) return absl::OkStatus();
  running_ = false;
  return Run(absl::StrCat(kBin, "/pg_ctl -D ", root_, "/data -m fast -w stop"))
      .status();
}

absl::Status PgServer::Restart() {
  if (absl::Status s = Stop(); !s.ok()) return s;
  return StartServer();
}

}  // namespace lumen::testing
