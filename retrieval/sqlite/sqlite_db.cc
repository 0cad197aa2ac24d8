#include "retrieval/sqlite/sqlite_db.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace lumen::retrieval::sqlite {

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view sql) {
  const std::string what =
      absl::StrCat("sqlite: ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                   " (in: ", sql.substr(0, 80), ")");
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(what);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(what);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(what);
    default:
      return absl::InternalError(what);
  }
}

// --- Statement ---

Statement::Statement(Connection* connection, sqlite3_stmt* stmt, bool* in_use)
    : connection_(connection), stmt_(stmt), in_use_(in_use) {}

Statement::Statement(Statement&& other) noexcept
    : connection_(other.connection_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(other.in_use_),
      bind_error_(other.bind_error_) {}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  if (in_use_ == nullptr) {
    sqlite3_finalize(stmt_);
    return;
  }
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
}

void Statement::NoteBind(int rc) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}

Statement& Statement::Bind(int index, int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  NoteBind(sqlite3_bind_double(stmt_, index, value));
  return *this;
}

Statement& Statement::Bind(int index, absl::string_view text) {
  NoteBind(sqlite3_bind_text64(stmt_, index, text.data(), text.size(),
                               SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Statement& Statement::BindBlob(int index, const void* data, size_t bytes) {
  NoteBind(sqlite3_bind_blob64(stmt_, index, data, bytes, SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::BindNull(int index) {
  NoteBind(sqlite3_bind_null(stmt_, index));
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) {
    return SqliteError(connection_->raw(), bind_error_, sqlite3_sql(stmt_));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(connection_->raw(), rc, sqlite3_sql(stmt_));
}

absl::Status Statement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

int64_t Statement::Int(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

double Statement::Double(int column) const {
  return sqlite3_column_double(stmt_, column);
}

std::string Statement::Text(int column) const {
  const unsigned char* t = sqlite3_column_text(stmt_, column);
  if (t == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(t),
                     sqlite3_column_bytes(stmt_, column));
}

absl::string_view Statement::Blob(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  if (data == nullptr) return {};
  return absl::string_view(static_cast<const char*>(data),
                           sqlite3_column_bytes(stmt_, column));
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

// --- Connection ---

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ",
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<Connection> c(new Connection(db));
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(c->Exec("PRAGMA journal_mode=WAL"));
  // FULL: a committed upsert is on disk before the RPC is acknowledged.
  RETURN_IF_ERROR(c->Exec("PRAGMA synchronous=FULL"));
  return c;
}

Connection::~Connection() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  sqlite3_close(db_);
}

absl::Status Connection::Exec(absl::string_view sql) {
  char* err = nullptr;
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, sql);
  return absl::OkStatus();
}

absl::StatusOr<Statement> Connection::Prepare(absl::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end() && !it->second.in_use) {
    it->second.in_use = true;
    return Statement(this, it->second.stmt, &it->second.in_use);
  }
  sqlite3_stmt* stmt = nullptr;
  const int rc =
      sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(db_, rc, sql);
  }
  if (it != cache_.end()) return Statement(this, stmt, /*in_use=*/nullptr);
  it = cache_.emplace(std::string(sql), Cached{stmt, /*in_use=*/true}).first;
  return Statement(this, stmt, &it->second.in_use);
}

int64_t Connection::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

int Connection::changes() const { return sqlite3_changes(db_); }

// --- Transaction ---

absl::StatusOr<Transaction> Transaction::Begin(Connection* connection,
                                               Mode mode) {
  RETURN_IF_ERROR(
      connection->Exec(mode == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN"));
  return Transaction(connection);
}

Transaction::Transaction(Transaction&& other) noexcept
    : connection_(std::exchange(other.connection_, nullptr)) {}

Transaction::~Transaction() {
  // An early return: undo everything since BEGIN. A failed ROLLBACK leaves
  // nothing to do (SQLite has already rolled back on such errors).
  if (connection_ != nullptr) (void)connection_->Exec("ROLLBACK");
}

absl::Status Transaction::Commit() {
  absl::Status s = connection_->Exec("COMMIT");
  // A failed COMMIT (e.g. SQLITE_BUSY) leaves the transaction open: the
  // destructor rolls it back.
  if (s.ok()) connection_ = nullptr;
  return s;
}

// --- ConnectionPool ---

namespace {
// Idle readers kept open; more are opened under load and closed after.
constexpr size_t kMaxIdleReaders = 8;
}  // namespace

ConnectionPool::Lease::Lease(ConnectionPool* pool,
                             std::unique_ptr<Connection> connection,
                             std::unique_lock<std::mutex> writer_lock)
    : pool_(pool),
      connection_(std::move(connection)),
      writer_lock_(std::move(writer_lock)) {}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_),
      connection_(std::move(other.connection_)),
      writer_lock_(std::move(other.writer_lock_)) {}

ConnectionPool::Lease::~Lease() {
  if (connection_ == nullptr) return;
  if (writer_lock_.owns_lock()) {
    pool_->writer_ = std::move(connection_);
    writer_lock_.unlock();
  } else {
    pool_->GiveBack(std::move(connection_));
  }
}

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Open(
    const std::string& path) {
  std::unique_ptr<ConnectionPool> pool(new ConnectionPool(path));
  ASSIGN_OR_RETURN(pool->writer_, Connection::Open(path));
  return pool;
}

ConnectionPool::Lease ConnectionPool::Writer() {
  std::unique_lock lock(writer_mu_);
  return Lease(this, std::move(writer_), std::move(lock));
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::Reader() {
  {
    std::lock_guard lock(readers_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Lease(this, std::move(c), {});
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, Connection::Open(path_));
  return Lease(this, std::move(c), {});
}

void ConnectionPool::GiveBack(std::unique_ptr<Connection> reader) {
  std::lock_guard lock(readers_mu_);
  if (idle_readers_.size() < kMaxIdleReaders) {
    idle_readers_.push_back(std::move(reader));
  }
}

}  // namespace lumen::retrieval::sqlite
