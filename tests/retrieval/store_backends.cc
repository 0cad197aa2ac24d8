#include "tests/retrieval/store_backends.h"

#include "absl/strings/str_split.h"
#include "tests/pg_server.h"
#include "tests/test_support.h"

namespace lumen::testing {

namespace {

class SqliteBackend : public StoreBackend {
 public:
  std::string location() const override { return dir_; }
  std::string index_dir() const override { return ""; }

 private:
  std::string dir_ = MakeTempDir();
};

// A fresh database on the process's PostgreSQL server, and a directory for
// the replica's saved indexes (so restarts exercise loading them).
class PostgresBackend : public StoreBackend {
 public:
  PostgresBackend(PgServer* server, std::string db)
      : server_(server), db_(std::move(db)) {}
  std::string location() const override { return server_->Uri(db_); }
  std::string index_dir() const override { return index_dir_; }

 private:
  PgServer* server_;
  std::string db_;
  std::string index_dir_ = MakeTempDir();
};

}  // namespace

// The backends this test binary runs the suite on (a comma-separated
// LUMEN_STORE_BACKENDS from the build): unit tests use SQLite alone, the
// integration binary PostgreSQL.
std::vector<std::string> StoreBackendNames() {
  return absl::StrSplit(LUMEN_STORE_BACKENDS, ',');
}

absl::StatusOr<std::unique_ptr<StoreBackend>> MakeStoreBackend(
    const std::string& name) {
  if (name == "sqlite") return std::make_unique<SqliteBackend>();
  if (name == "postgresql") {
    std::string why;
    PgServer* server = PgServer::Shared(&why);
    if (server == nullptr) return absl::UnavailableError(why);
    absl::StatusOr<std::string> db = server->CreateDatabase();
    if (!db.ok()) return db.status();
    return std::make_unique<PostgresBackend>(server, *db);
  }
  return absl::InvalidArgumentError("unknown backend " + name);
}

}  // namespace lumen::testing
