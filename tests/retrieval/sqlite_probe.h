#pragma once
// SqliteProbe: watches every SQLite connection the process opens (through
// sqlite3_auto_extension) with an authorizer, which SQLite calls while it
// compiles a statement. Tests use it to count how often the store compiles a
// statement (a statement cache compiles each once per connection) and to make
// chosen statements fail (deny reading a column), without hooks in the store.
// Install() once per process; Reset() between tests. Thread-safe.

#include <sqlite3.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace lumen::testing {

class SqliteProbe {
 public:
  // The process-wide probe, registered on first use: every connection opened
  // afterwards reports to it (connections opened before are not watched).
  static SqliteProbe& Install() {
    static SqliteProbe* probe = [] {
      auto* p = new SqliteProbe();
      sqlite3_auto_extension(reinterpret_cast<void (*)()>(&OnOpen));
      return p;
    }();
    return *probe;
  }

  // Clears the counters and the denied columns.
  void Reset() {
    std::lock_guard lock(mu_);
    compiles_.clear();
    denied_.clear();
  }
  // How many authorizer calls for `action` on `table` so far: for
  // SQLITE_INSERT and SQLITE_DELETE, the number of statements compiled that
  // write the table (SQLITE_READ is reported once per column read).
  int Compiles(int action, const std::string& table) const {
    std::lock_guard lock(mu_);
    auto it = compiles_.find({action, table});
    return it == compiles_.end() ? 0 : it->second;
  }
  // Statements reading table.column fail to compile from now on
  // ("access to table.column is prohibited").
  void DenyRead(const std::string& table, const std::string& column) {
    std::lock_guard lock(mu_);
    denied_.insert({table, column});
  }

 private:
  SqliteProbe() = default;

  static int OnOpen(sqlite3* db, char**, const void*) {
    sqlite3_set_authorizer(db, &Authorize, &Install());
    return SQLITE_OK;
  }
  static int Authorize(void* self, int action, const char* a1, const char* a2,
                       const char*, const char* trigger) {
    auto* probe = static_cast<SqliteProbe*>(self);
    std::lock_guard lock(probe->mu_);
    const std::string table = a1 ? a1 : "";
    if (trigger == nullptr) ++probe->compiles_[{action, table}];
    if (action == SQLITE_READ && a2 != nullptr &&
        probe->denied_.count({table, a2})) {
      return SQLITE_DENY;
    }
    return SQLITE_OK;
  }

  mutable std::mutex mu_;
  std::map<std::pair<int, std::string>, int> compiles_;
  std::set<std::pair<std::string, std::string>> denied_;
};

}  // namespace lumen::testing
