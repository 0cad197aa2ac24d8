#include "retrieval/vector_catalog.h"

#include <chrono>
#include <future>
#include <map>
#include <mutex>

#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::retrieval {
namespace {

using ::testing::HasSubstr;

// An in-memory change log: per collection, the changes in sequence order
// and the current embeddings. ReadChanges can be made to fail or to block.
class FakeChangeLog : public ChangeLog {
 public:
  void Add(int64_t collection, int64_t chunk, std::vector<float> v) {
    std::lock_guard lock(mu_);
    live_[collection][chunk] = v;
    log_[collection].push_back({++seq_, chunk, false, {}});
  }
  void Remove(int64_t collection, int64_t chunk) {
    std::lock_guard lock(mu_);
    live_[collection].erase(chunk);
    log_[collection].push_back({++seq_, chunk, true, {}});
  }
  void SetFailing(bool failing) {
    std::lock_guard lock(mu_);
    failing_ = failing;
  }
  // The next ReadChanges signals `entered` and waits for `release`.
  void BlockNextRead(std::promise<void>* entered,
                     std::shared_future<void> release) {
    std::lock_guard lock(mu_);
    entered_ = entered;
    release_ = std::move(release);
  }
  int scans() const {
    std::lock_guard lock(mu_);
    return scans_;
  }
  int64_t last_read_after() const {
    std::lock_guard lock(mu_);
    return last_read_after_;
  }

  absl::StatusOr<std::vector<ChangeRecord>> ReadChanges(int64_t collection,
                                                        int64_t after_seq,
                                                        int limit) override {
    std::promise<void>* entered = nullptr;
    std::shared_future<void> release;
    {
      std::lock_guard lock(mu_);
      std::swap(entered, entered_);
      release = std::move(release_);
    }
    if (entered != nullptr) {
      entered->set_value();
      release.wait();
    }
    std::lock_guard lock(mu_);
    if (failing_) return absl::UnavailableError("database is down");
    last_read_after_ = after_seq;
    std::vector<ChangeRecord> out;
    for (const ChangeRecord& c : log_[collection]) {
      if (c.seq <= after_seq) continue;
      ChangeRecord r = c;
      if (!r.removed) {
        auto it = live_[collection].find(r.chunk_id);
        if (it != live_[collection].end()) r.embedding = it->second;
      }
      out.push_back(std::move(r));
      if (static_cast<int>(out.size()) == limit) break;
    }
    return out;
  }
  absl::StatusOr<int64_t> ScanEmbeddings(
      int64_t collection,
      const std::function<void(int64_t, absl::Span<const float>)>& visit)
      override {
    std::lock_guard lock(mu_);
    if (failing_) return absl::UnavailableError("database is down");
    ++scans_;
    for (const auto& [chunk, v] : live_[collection]) visit(chunk, v);
    return seq_;
  }

 private:
  mutable std::mutex mu_;
  int64_t seq_ = 0;
  std::map<int64_t, std::vector<ChangeRecord>> log_;
  std::map<int64_t, std::map<int64_t, std::vector<float>>> live_;
  bool failing_ = false;
  int scans_ = 0;
  int64_t last_read_after_ = -1;
  std::promise<void>* entered_ = nullptr;
  std::shared_future<void> release_;
};

std::vector<float> Unit(int axis, int dim = 4) {
  std::vector<float> v(dim, 0.0f);
  v[axis] = 1.0f;
  return v;
}

IndexLayout Layout(const std::string& model = "m") {
  return IndexLayout{4, HnswOptions{}, model};
}

int64_t Nearest(const VectorCatalog& catalog, int64_t collection, int axis) {
  auto hits = catalog.Search(collection, Unit(axis).data(), 1);
  if (!hits.ok() || hits->empty()) return -1;
  return (*hits)[0].label;
}

TEST(VectorCatalogTest, BuildsFromASnapshotThenFollowsTheLogInOrder) {
  FakeChangeLog log;
  log.Add(7, 100, Unit(0));
  log.Add(7, 101, Unit(1));
  VectorCatalog catalog("", &log);
  EXPECT_THAT(catalog.Search(7, Unit(0).data(), 1),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("7")));
  ASSERT_TRUE(catalog.Attach(7, Layout()).ok());
  EXPECT_EQ(log.scans(), 1);
  EXPECT_EQ(Nearest(catalog, 7, 0), 100);
  EXPECT_EQ(catalog.AppliedSeq(7), 2);
  // Later changes, replayed in order: 100 is replaced by 102 on axis 0, and
  // 103 is added then removed.
  log.Remove(7, 100);
  log.Add(7, 102, Unit(0));
  log.Add(7, 103, Unit(2));
  log.Remove(7, 103);
  ASSERT_TRUE(catalog.Attach(7, Layout()).ok());  // attached: no catch-up
  EXPECT_EQ(Nearest(catalog, 7, 0), 100);
  ASSERT_TRUE(catalog.CatchUp(7).ok());
  EXPECT_EQ(Nearest(catalog, 7, 0), 102);
  EXPECT_NE(Nearest(catalog, 7, 2), 103);
  EXPECT_EQ(catalog.AppliedSeq(7), 6);
  // 100 is a tombstone; 103 was gone before it was read, so never added.
  EXPECT_EQ(catalog.Tombstones(7), 1u);
  EXPECT_EQ(log.scans(), 1);
  // Another collection is independent.
  EXPECT_TRUE(catalog.CatchUp(8).ok());  // not attached: nothing to do
  EXPECT_FALSE(catalog.attached(8));
}

TEST(VectorCatalogTest, ASavedIndexIsReusedAndOnlyMissedChangesReplayed) {
  const std::string dir = lumen::testing::MakeTempDir();
  FakeChangeLog log;
  log.Add(1, 10, Unit(0));
  {
    VectorCatalog catalog(dir, &log);
    ASSERT_TRUE(catalog.Attach(1, Layout()).ok());
    ASSERT_TRUE(catalog.SaveAll().ok());
  }
  log.Add(1, 11, Unit(1));  // missed while "down"
  VectorCatalog catalog(dir, &log);
  ASSERT_TRUE(catalog.Attach(1, Layout()).ok());
  EXPECT_EQ(log.scans(), 1) << "the saved index was rebuilt from scratch";
  EXPECT_EQ(log.last_read_after(), 1);
  EXPECT_EQ(Nearest(catalog, 1, 1), 11);
  EXPECT_EQ(Nearest(catalog, 1, 0), 10);
  // The same files for another model are not used.
  VectorCatalog other(dir, &log);
  ASSERT_TRUE(other.Attach(1, Layout("another-model")).ok());
  EXPECT_EQ(log.scans(), 2);
}

TEST(VectorCatalogTest, ALayoutChangeReplacesTheIndex) {
  FakeChangeLog log;
  log.Add(1, 10, Unit(0));
  VectorCatalog catalog("", &log);
  ASSERT_TRUE(catalog.Attach(1, Layout("a")).ok());
  ASSERT_TRUE(catalog.Attach(1, Layout("a")).ok());
  EXPECT_EQ(log.scans(), 1);
  ASSERT_TRUE(catalog.Attach(1, Layout("b")).ok());
  EXPECT_EQ(log.scans(), 2);
  EXPECT_EQ(Nearest(catalog, 1, 0), 10);
}

TEST(VectorCatalogTest, TombstonesAreRebuiltAway) {
  FakeChangeLog log;
  for (int i = 0; i < 600; ++i) log.Add(1, i, Unit(i % 4));
  VectorCatalog catalog("", &log);
  ASSERT_TRUE(catalog.Attach(1, Layout()).ok());
  for (int i = 0; i < 250; ++i) log.Remove(1, i);
  ASSERT_TRUE(catalog.CatchUp(1).ok());
  EXPECT_EQ(catalog.Tombstones(1), 250u);  // below 256: kept
  for (int i = 250; i < 400; ++i) log.Remove(1, i);
  ASSERT_TRUE(catalog.CatchUp(1).ok());
  EXPECT_EQ(catalog.Tombstones(1), 0u);
  EXPECT_EQ(log.scans(), 2);
  EXPECT_GE(Nearest(catalog, 1, 3), 400);
}

TEST(VectorCatalogTest, SearchesDoNotWaitForACatchUpReadingTheLog) {
  FakeChangeLog log;
  log.Add(1, 10, Unit(0));
  VectorCatalog catalog("", &log);
  ASSERT_TRUE(catalog.Attach(1, Layout()).ok());
  log.Add(1, 11, Unit(1));
  std::promise<void> entered, release;
  log.BlockNextRead(&entered, release.get_future().share());
  auto catch_up =
      std::async(std::launch::async, [&] { return catalog.CatchUp(1); });
  entered.get_future().wait();
  // The catch-up is inside its log read: a search answers from the index.
  auto search =
      std::async(std::launch::async, [&] { return Nearest(catalog, 1, 0); });
  const bool finished =
      search.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  release.set_value();
  EXPECT_TRUE(finished);
  EXPECT_EQ(search.get(), 10);
  ASSERT_TRUE(catch_up.get().ok());
  EXPECT_EQ(Nearest(catalog, 1, 1), 11);
}

TEST(VectorCatalogTest, AFailedCatchUpIsRetriedAndAFailedAttachToo) {
  FakeChangeLog log;
  log.Add(1, 10, Unit(0));
  VectorCatalog catalog("", &log);
  log.SetFailing(true);
  EXPECT_THAT(catalog.Attach(1, Layout()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("down")));
  log.SetFailing(false);
  ASSERT_TRUE(catalog.Attach(1, Layout()).ok());
  log.Add(1, 11, Unit(1));
  log.SetFailing(true);
  EXPECT_THAT(catalog.CatchUp(1),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("down")));
  EXPECT_EQ(Nearest(catalog, 1, 0), 10);  // still serves what it has
  log.SetFailing(false);
  ASSERT_TRUE(catalog.CatchUpAll().ok());
  EXPECT_EQ(Nearest(catalog, 1, 1), 11);
}

TEST(VectorCatalogTest, RetainForgetsDeletedCollectionsAndTheirFiles) {
  const std::string dir = lumen::testing::MakeTempDir();
  FakeChangeLog log;
  log.Add(1, 10, Unit(0));
  log.Add(2, 20, Unit(0));
  VectorCatalog catalog(dir, &log);
  ASSERT_TRUE(catalog.Attach(1, Layout()).ok());
  ASSERT_TRUE(catalog.Attach(2, Layout()).ok());
  ASSERT_TRUE(catalog.SaveAll().ok());
  catalog.Retain({1});
  EXPECT_TRUE(catalog.attached(1));
  EXPECT_FALSE(catalog.attached(2));
  EXPECT_EQ(lumen::testing::ReadFile(dir + "/collection-2.hnsw.seq"), "");
  EXPECT_NE(lumen::testing::ReadFile(dir + "/collection-1.hnsw.seq"), "");
}

}  // namespace
}  // namespace lumen::retrieval
