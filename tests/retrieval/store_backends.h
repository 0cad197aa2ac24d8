#pragma once
// The knowledge-store backends the parameterised store suite runs against:
// "sqlite", and "postgresql" on a PostgreSQL 15 started for the test process
// (tests/pg_server.h). Each StoreBackend is a fresh, empty database; opening
// it again is a restart on the same data.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "retrieval/knowledge_store.h"

namespace lumen::testing {

class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // The store on this backend's database (and index directory).
  absl::StatusOr<std::unique_ptr<retrieval::KnowledgeStore>> Open(
      retrieval::Embedder* embedder, retrieval::ChunkerOptions chunking) const {
    return retrieval::KnowledgeStore::Open(
        retrieval::StoreOptions{location(), index_dir(), embedder, chunking});
  }
  virtual std::string location() const = 0;
  virtual std::string index_dir() const = 0;
};

// The backends this test binary covers, by name.
std::vector<std::string> StoreBackendNames();
// A fresh database on the named backend; Unavailable when the backend
// cannot run here (PostgreSQL 15 not installed): the test is skipped.
absl::StatusOr<std::unique_ptr<StoreBackend>> MakeStoreBackend(
    const std::string& name);

}  // namespace lumen::testing
