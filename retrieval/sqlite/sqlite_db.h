#pragma once
// The SQLite plumbing of the embedded knowledge store: a connection with a
// statement cache (each SQL text is compiled once per connection and reset
// after each use), a Statement handle whose every result is a Status, and a
// transaction guard that rolls back unless committed, so every early return
// leaves the database as it was.
//
// Threads: a Connection and everything obtained from it belong to one thread
// at a time; the store serializes access to each connection with its own lock.

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumen::retrieval::sqlite {

// SQLite result code -> Status: BUSY/LOCKED are Unavailable (retry later),
// CORRUPT/NOTADB DataLoss, FULL ResourceExhausted, the rest Internal.
// The message names SQLite's error and the statement.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view sql);

class Connection;

// A prepared statement in use: bind parameters (1-based), step, read columns
// (0-based). Reset and unbound when destroyed, so a cached statement is ready
// for its next use. Move-only.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // A failed bind is reported by the next Step()/Run().
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, absl::string_view text);
  Statement& BindBlob(int index, const void* data, size_t bytes);
  Statement& BindNull(int index);

  // true: a row is available; false: done. Errors as SqliteError.
  [[nodiscard]] absl::StatusOr<bool> Step();
  // Runs to completion (rows, if any, are ignored).
  [[nodiscard]] absl::Status Run();

  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  // The blob's bytes (empty for NULL); valid until the next Step().
  absl::string_view Blob(int column) const;
  bool IsNull(int column) const;

 private:
  friend class Connection;
  // `in_use`: the cache entry's flag, cleared on destruction; null for a
  // statement outside the cache (finalized on destruction).
  Statement(Connection* connection, sqlite3_stmt* stmt, bool* in_use);
  void NoteBind(int rc);

  Connection* connection_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
  int bind_error_ = SQLITE_OK;
};

class Connection {
 public:
  // Opens (creating) the database file with a busy timeout; WAL mode and
  // synchronous=FULL (a commit is on disk before it returns).
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& path);
  ~Connection();  // finalizes the cached statements, closes

  // Runs one or more statements that return no rows.
  absl::Status Exec(absl::string_view sql);
  // The cached statement for `sql`, compiled on first use. If that statement
  // is still in use (a nested use of the same SQL), a fresh one is compiled.
  absl::StatusOr<Statement> Prepare(absl::string_view sql);

  int64_t last_insert_rowid() const;
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int changes() const;
  sqlite3* raw() const { return db_; }

 private:
  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::map<std::string, Cached, std::less<>> cache_;
};

// BEGIN ... COMMIT, rolled back on destruction unless Commit() succeeded.
class Transaction {
 public:
  // kImmediate takes the write lock at once (writers), kDeferred reads a
  // consistent snapshot.
  enum class Mode { kDeferred, kImmediate };
  static absl::StatusOr<Transaction> Begin(Connection* connection, Mode mode);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  absl::Status Commit();

 private:
  explicit Transaction(Connection* connection) : connection_(connection) {}
  Connection* connection_;  // null once committed or moved from
};

// The connections to one database file: one writer (SQLite serializes
// writers anyway) and readers opened on demand (in WAL mode they read the
// last committed state while a write is in progress). Thread-safe.
class ConnectionPool {
 public:
  // A connection lent to one thread; given back on destruction.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection* operator->() const { return connection_.get(); }
    Connection* get() const { return connection_.get(); }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection,
          std::unique_lock<std::mutex> writer_lock);
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
    std::unique_lock<std::mutex> writer_lock_;  // held by the writer's lease
  };

  // Opens the writer connection (creating the file).
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Open(
      const std::string& path);

  // The writer; waits while another thread has it.
  Lease Writer();
  // An idle reader, or a new one.
  absl::StatusOr<Lease> Reader();

 private:
  explicit ConnectionPool(std::string path) : path_(std::move(path)) {}
  void GiveBack(std::unique_ptr<Connection> reader);

  const std::string path_;
  std::mutex writer_mu_;  // owns the writer while a lease has it
  std::unique_ptr<Connection> writer_;
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;
};

}  // namespace lumen::retrieval::sqlite
