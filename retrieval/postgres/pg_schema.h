#pragma once
// The PostgreSQL knowledge store's schema, created and migrated by lumend
// at start. lumen_schema_version records the last migration applied; a
// database written by a newer lumend is refused untouched. Replicas starting
// together take an advisory lock, so one migrates and the others wait.

#include <string>

#include "absl/status/statusor.h"
#include "retrieval/postgres/pg_connection.h"

namespace lumen::retrieval::postgres {

// The version this build writes.
inline constexpr int kSchemaVersion = 1;

// Brings the database to kSchemaVersion in one transaction and returns the
// store's identity (a UUID created with the schema: replicas keep their
// derived indexes per store). FailedPrecondition for a newer schema.
absl::StatusOr<std::string> MigrateSchema(Connection* db);

}  // namespace lumen::retrieval::postgres
