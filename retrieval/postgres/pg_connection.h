#pragma once
// The libpq plumbing of the PostgreSQL knowledge store: a connection with a
// statement cache (each SQL text is prepared once per connection), query
// parameters (text, or binary for bytea), results, a transaction guard that
// rolls back unless committed, and a pool that replaces lost connections.
//
// Errors: a lost or unreachable server is Unavailable ("the knowledge store
// database is unavailable: ..."), so callers see UNAVAILABLE while
// PostgreSQL is down and recover by themselves when it is back (the pool
// opens new connections); serialization failures are Aborted; unique
// violations AlreadyExists; the rest Internal.
//
// Threads: a Connection belongs to one thread at a time (the pool lends it
// out); the pool is thread-safe.

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumen::retrieval::postgres {

// Parameters of one statement ($1, $2, ... in order).
class Params {
 public:
  Params& Add(absl::string_view text);
  Params& Add(const char* text) { return Add(absl::string_view(text)); }
  Params& Add(int64_t value);
  // Raw bytes for a bytea parameter (sent in binary).
  Params& AddBytes(const void* data, size_t bytes);
  Params& AddNull();

  int size() const { return static_cast<int>(values_.size()); }
  // Pointers for libpq; valid while this object is unchanged.
  std::vector<const char*> values() const;
  std::vector<int> lengths() const;
  std::vector<int> formats() const;

 private:
  std::vector<std::string> values_;
  std::vector<bool> null_;
  std::vector<int> binary_;
};

// A query's rows (text format). Move-only.
class Result {
 public:
  explicit Result(PGresult* result) : result_(result) {}
  Result(Result&& other) noexcept;
  Result& operator=(Result&& other) noexcept;
  ~Result();

  int rows() const;
  bool IsNull(int row, int column) const;
  absl::string_view Text(int row, int column) const;
  int64_t Int(int row, int column) const;
  double Double(int row, int column) const;
  bool Bool(int row, int column) const;
  // A bytea column holding float32 values (empty for NULL).
  std::vector<float> Floats(int row, int column) const;

 private:
  PGresult* result_;
};

// A PostgreSQL text array literal ("{"a","b"}") of `values`.
std::string ArrayLiteral(const std::vector<std::string>& values);
std::string ArrayLiteral(const std::vector<int64_t>& values);

class Connection {
 public:
  // Connects with a short connect timeout and TCP keepalives (a dead server
  // is noticed) unless the URI sets them. Unavailable when it cannot.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& uri);
  ~Connection();

  // One parameterised statement through the statement cache.
  absl::StatusOr<Result> Query(const std::string& sql,
                               const Params& params = Params());
  // A statement not worth caching (SQL text built per call).
  absl::StatusOr<Result> QueryOnce(const std::string& sql,
                                   const Params& params = Params());
  // SQL without parameters (may hold several statements).
  absl::Status Exec(const std::string& sql);
  // The server connection was lost: the pool drops this connection.
  bool broken() const;
  PGconn* raw() const { return conn_; }

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  absl::StatusOr<Result> Check(PGresult* result, absl::string_view sql);

  PGconn* conn_;
  std::map<std::string, std::string> prepared_;  // SQL -> statement name
};

// BEGIN ... COMMIT, rolled back on destruction unless Commit() succeeded.
class Transaction {
 public:
  // `begin`: "BEGIN" or e.g. "BEGIN ISOLATION LEVEL REPEATABLE READ".
  static absl::StatusOr<Transaction> Begin(Connection* connection,
                                           const char* begin = "BEGIN");
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(Connection* connection) : connection_(connection) {}
  Connection* connection_;
};

class ConnectionPool {
 public:
  // A connection lent to one thread; given back on destruction unless it
  // broke.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection* operator->() const { return connection_.get(); }
    Connection* get() const { return connection_.get(); }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  explicit ConnectionPool(std::string uri) : uri_(std::move(uri)) {}
  // An idle connection or a new one; Unavailable while the database is
  // down.
  absl::StatusOr<Lease> Acquire();
  const std::string& uri() const { return uri_; }

 private:
  void GiveBack(std::unique_ptr<Connection> connection);

  const std::string uri_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace lumen::retrieval::postgres
