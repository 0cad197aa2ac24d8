#include "tests/retrieval/store_backends.h"

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

}  // namespace

std::vector<std::string> StoreBackendNames() { return {"sqlite"}; }

std::unique_ptr<StoreBackend> MakeStoreBackend(const std::string& name) {
  if (name == "sqlite") return std::make_unique<SqliteBackend>();
  return nullptr;
}

}  // namespace lumen::testing
