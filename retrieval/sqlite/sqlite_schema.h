#pragma once
// The SQLite knowledge store's schema, created and migrated at open: a
// schema_version table records the last migration applied. A database
// written by a newer lumend (a higher version) is refused, not touched.

#include "absl/status/status.h"
#include "retrieval/sqlite/sqlite_db.h"

namespace lumen::retrieval::sqlite {

// The version this build writes.
inline constexpr int kSchemaVersion = 2;

// Brings the database to kSchemaVersion in one transaction.
// FailedPrecondition for a newer schema.
absl::Status MigrateSchema(Connection* db);

}  // namespace lumen::retrieval::sqlite
