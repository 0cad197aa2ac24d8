#include "retrieval/postgres/pg_connection.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"

namespace lumen::retrieval::postgres {

namespace {

// Idle connections kept; more are opened under load and closed after.
constexpr size_t kMaxIdle = 8;

absl::Status Unavailable(absl::string_view why) {
  return absl::UnavailableError(
      absl::StrCat("the knowledge store database is unavailable: ",
                   absl::StripTrailingAsciiWhitespace(why)));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Quote(absl::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

// --- Params ---

Params& Params::Add(absl::string_view text) {
  values_.emplace_back(text);
  null_.push_back(false);
  binary_.push_back(0);
  return *this;
}

Params& Params::Add(int64_t value) { return Add(absl::StrCat(value)); }

Params& Params::AddBytes(const void* data, size_t bytes) {
  values_.emplace_back(static_cast<const char*>(data), bytes);
  null_.push_back(false);
  binary_.push_back(1);
  return *this;
}

Params& Params::AddNull() {
  values_.emplace_back();
  null_.push_back(true);
  binary_.push_back(0);
  return *this;
}

std::vector<const char*> Params::values() const {
  std::vector<const char*> out;
  for (size_t i = 0; i < values_.size(); ++i)
    out.push_back(null_[i] ? nullptr : values_[i].c_str());
  return out;
}

std::vector<int> Params::lengths() const {
  std::vector<int> out;
  for (const std::string& v : values_)
    out.push_back(static_cast<int>(v.size()));
  return out;
}

std::vector<int> Params::formats() const { return binary_; }

// --- Result ---

Result::Result(Result&& other) noexcept
    : result_(std::exchange(other.result_, nullptr)) {}

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

Result::~Result() { PQclear(result_); }

int Result::rows() const { return PQntuples(result_); }

bool Result::IsNull(int row, int column) const {
  return PQgetisnull(result_, row, column) != 0;
}

absl::string_view Result::Text(int row, int column) const {
  return absl::string_view(PQgetvalue(result_, row, column),
                           PQgetlength(result_, row, column));
}

int64_t Result::Int(int row, int column) const {
  int64_t v = 0;
  (void)absl::SimpleAtoi(Text(row, column), &v);
  return v;
}

double Result::Double(int row, int column) const {
  double v = 0;
  (void)absl::SimpleAtod(Text(row, column), &v);
  return v;
}

bool Result::Bool(int row, int column) const {
  return Text(row, column) == "t";
}

std::vector<float> Result::Floats(int row, int column) const {
  // bytea in text format: "\x" and two hex digits per byte.
  absl::string_view hex = Text(row, column);
  if (IsNull(row, column) || !absl::ConsumePrefix(&hex, "\\x")) return {};
  std::vector<float> out(hex.size() / 2 / sizeof(float));  // [dim]
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  for (size_t i = 0; i < out.size() * sizeof(float); ++i) {
    const int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return {};
    bytes[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

std::string ArrayLiteral(const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  for (const std::string& v : values) quoted.push_back(Quote(v));
  return absl::StrCat("{", absl::StrJoin(quoted, ","), "}");
}

std::string ArrayLiteral(const std::vector<int64_t>& values) {
  return absl::StrCat("{", absl::StrJoin(values, ","), "}");
}

// --- Connection ---

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const std::string& uri) {
  // Defaults first: settings in the URI (expanded from "dbname") win.
  const char* keys[] = {"connect_timeout",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "application_name",
                        "dbname",
                        nullptr};
  const char* values[] = {"3", "10", "5", "3", "lumend", uri.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Unavailable("out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    absl::Status s = Unavailable(PQerrorMessage(conn));
    PQfinish(conn);
    return s;
  }
  // Notices ("relation already exists, skipping") are not errors: keep them
  // off stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::broken() const { return PQstatus(conn_) != CONNECTION_OK; }

absl::StatusOr<Result> Connection::Check(PGresult* raw, absl::string_view sql) {
  Result result(raw);
  const ExecStatusType st = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return result;
  const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  const std::string code = state ? state : "";
  const std::string message =
      raw ? PQresultErrorMessage(raw) : PQerrorMessage(conn_);
  if (broken() || code.empty() || code.rfind("08", 0) == 0 || code == "57P01" ||
      code == "57P02" || code == "57P03") {
    return Unavailable(message);
  }
  const std::string what =
      absl::StrCat("postgresql: ", absl::StripTrailingAsciiWhitespace(message),
                   " (in: ", sql.substr(0, 80), ")");
  if (code == "40001" || code == "40P01") return absl::AbortedError(what);
  if (code == "23505") return absl::AlreadyExistsError(what);
  if (code.rfind("53", 0) == 0) return absl::ResourceExhaustedError(what);
  return absl::InternalError(what);
}

absl::StatusOr<Result> Connection::Query(const std::string& sql,
                                         const Params& params) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    const std::string name = absl::StrCat("s", prepared_.size());
    ASSIGN_OR_RETURN(
        Result prepared,
        Check(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr), sql));
    it = prepared_.emplace(sql, name).first;
  }
  const auto values = params.values();
  const auto lengths = params.lengths();
  const auto formats = params.formats();
  return Check(PQexecPrepared(conn_, it->second.c_str(), params.size(),
                              values.data(), lengths.data(), formats.data(),
                              /*resultFormat=*/0),
               sql);
}

absl::StatusOr<Result> Connection::QueryOnce(const std::string& sql,
                                             const Params& params) {
  const auto values = params.values();
  const auto lengths = params.lengths();
  const auto formats = params.formats();
  return Check(PQexecParams(conn_, sql.c_str(), params.size(), nullptr,
                            values.data(), lengths.data(), formats.data(),
                            /*resultFormat=*/0),
               sql);
}

absl::Status Connection::Exec(const std::string& sql) {
  return Check(PQexec(conn_, sql.c_str()), sql).status();
}

// --- Transaction ---

absl::StatusOr<Transaction> Transaction::Begin(Connection* connection,
                                               const char* begin) {
  RETURN_IF_ERROR(connection->Exec(begin));
  return Transaction(connection);
}

Transaction::Transaction(Transaction&& other) noexcept
    : connection_(std::exchange(other.connection_, nullptr)) {}

Transaction::~Transaction() {
  // An early return: undo everything since BEGIN (a lost connection has
  // nothing left to undo).
  if (connection_ != nullptr && !connection_->broken()) {
    (void)connection_->Exec("ROLLBACK");
  }
}

absl::Status Transaction::Commit() {
  Connection* c = std::exchange(connection_, nullptr);
  return c->Exec("COMMIT");
}

// --- ConnectionPool ---

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), connection_(std::move(other.connection_)) {}

ConnectionPool::Lease::~Lease() {
  if (connection_ != nullptr) pool_->GiveBack(std::move(connection_));
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::Acquire() {
  {
    std::lock_guard lock(mu_);
    while (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.back());
      idle_.pop_back();
      if (!c->broken()) return Lease(this, std::move(c));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, Connection::Open(uri_));
  return Lease(this, std::move(c));
}

void ConnectionPool::GiveBack(std::unique_ptr<Connection> connection) {
  // A connection that lost its server is dropped, and so are the idle ones
  // (the server went away under them too): the next Acquire opens a new
  // one, which is how the store recovers after an outage.
  std::lock_guard lock(mu_);
  if (connection->broken()) {
    idle_.clear();
    return;
  }
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(connection));
}

}  // namespace lumen::retrieval::postgres
