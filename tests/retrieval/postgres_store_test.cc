// What only the PostgreSQL backend has: several replicas (stores) on one
// database following each other's writes, outages of the database, its
// schema version, and bigram keyword search.

#include <chrono>
#include <future>

#include "gtest/gtest.h"
#include "retrieval/knowledge_base.h"
#include "tests/pg_server.h"
#include "tests/retrieval/hashing_embedder.h"
#include "tests/test_support.h"

namespace lumen::retrieval {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    server_ = lumen::testing::PgServer::Shared(&why);
    if (server_ == nullptr) GTEST_SKIP() << "no PostgreSQL: " << why;
    auto db = server_->CreateDatabase();
    ASSERT_TRUE(db.ok()) << db.status();
    uri_ = server_->Uri(*db);
  }
  // A replica: its own store on the shared database, its own index
  // directory.
  std::unique_ptr<KnowledgeBase> Replica(
      const std::string& index_dir = lumen::testing::MakeTempDir()) {
    auto s = KnowledgeStore::Open(
        StoreOptions{uri_, index_dir, &embedder_, ChunkerOptions{40, 8}});
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return nullptr;
    return std::unique_ptr<KnowledgeBase>(
        static_cast<KnowledgeBase*>(s->release()));
  }
  static SearchRequest Query(const std::string& text, SearchMode mode) {
    SearchRequest q;
    q.query = text;
    q.mode = mode;
    q.top_k = 3;
    return q;
  }
  static std::string Top(const absl::StatusOr<std::vector<ChunkHit>>& hits) {
    return hits.ok() && !hits->empty() ? (*hits)[0].document_id : "";
  }

  lumen::testing::PgServer* server_ = nullptr;
  std::string uri_;
  lumen::testing::HashingEmbedder embedder_;
};

TEST_F(PostgresStoreTest, AWriteOnOneReplicaIsSearchableOnAnotherByNotify) {
  auto a = Replica(), b = Replica();
  ASSERT_TRUE(a->CreateCollection("c", "t", {}, {}).ok());
  for (int i = 0; i < 5; ++i) {
    const std::string id = "doc" + std::to_string(i);
    ASSERT_TRUE(
        a->Upsert("c", {{id, "", "", "", "Unique" + id + " travels fast."}})
            .ok());
    const int64_t seq = *a->AppliedSequence("c");
    // B learns of the write by LISTEN/NOTIFY, not by being asked.
    ASSERT_TRUE(
        b->AwaitApplied("c", seq, Clock::now() + std::chrono::seconds(20)).ok())
        << "replica B did not apply change " << seq
        << " within 20 s (below the 30 s poll: NOTIFY did it)";
    EXPECT_EQ(Top(b->Search("c", Query("Unique" + id, SearchMode::kVector))),
              id);
    EXPECT_EQ(Top(b->Search("c", Query("unique" + id, SearchMode::kKeyword))),
              id);
  }
  // Deletes travel the same way.
  ASSERT_EQ(*a->DeleteDocuments("c", {"doc3"}), 1);
  ASSERT_TRUE(b->AwaitApplied("c", *a->AppliedSequence("c"),
                              Clock::now() + std::chrono::seconds(20))
                  .ok());
  EXPECT_NE(Top(b->Search("c", Query("Uniquedoc3", SearchMode::kVector))),
            "doc3");
  EXPECT_EQ(b->GetCollection("c")->documents, 4);
}

TEST_F(PostgresStoreTest, AReplicaCatchesUpOnWritesItMissed) {
  const std::string b_dir = lumen::testing::MakeTempDir();
  auto a = Replica();
  ASSERT_TRUE(a->CreateCollection("c", "t", {}, {}).ok());
  ASSERT_TRUE(a->Upsert("c", {{"early", "", "", "", "Early bird."}}).ok());
  {
    auto b = Replica(b_dir);
    ASSERT_EQ(Top(b->Search("c", Query("early bird", SearchMode::kVector))),
              "early");
  }  // B stops (saving its index), then misses these:
  ASSERT_TRUE(a->Upsert("c", {{"late", "", "", "", "Late owl hoots."}}).ok());
  ASSERT_EQ(*a->DeleteDocuments("c", {"early"}), 1);
  auto b = Replica(b_dir);
  EXPECT_EQ(*b->AppliedSequence("c"), *a->AppliedSequence("c"));
  EXPECT_EQ(Top(b->Search("c", Query("late owl hoots", SearchMode::kVector))),
            "late");
  EXPECT_NE(Top(b->Search("c", Query("early bird", SearchMode::kVector))),
            "early");
}

TEST_F(PostgresStoreTest, ConcurrentWritersOnTwoReplicasAgree) {
  auto a = Replica(), b = Replica(), observer = Replica();
  ASSERT_TRUE(a->CreateCollection("c", "t", {}, {}).ok());
  auto write = [](KnowledgeBase* r, const std::string& prefix) {
    bool ok = true;
    for (int i = 0; i < 15; ++i) {
      const std::string id = prefix + std::to_string(i);
      ok &= r->Upsert("c", {{id, "", "", "", "Word" + id + " here."}}).ok();
      if (i % 3 == 0) ok &= r->DeleteDocuments("c", {id}).ok();
    }
    return ok;
  };
  auto fa = std::async(std::launch::async, write, a.get(), "a");
  auto fb = std::async(std::launch::async, write, b.get(), "b");
  ASSERT_TRUE(fa.get());
  ASSERT_TRUE(fb.get());
  const int64_t last =
      std::max(*a->AppliedSequence("c"), *b->AppliedSequence("c"));
  ASSERT_TRUE(
      observer->AwaitApplied("c", last, Clock::now() + std::chrono::seconds(20))
          .ok());
  EXPECT_EQ(*observer->AppliedSequence("c"), last);
  EXPECT_EQ(observer->GetCollection("c")->documents, 20);
  for (const char* prefix : {"a", "b"}) {
    for (int i : {1, 2, 3, 4}) {
      const std::string id = prefix + std::to_string(i);
      const std::string top =
          Top(observer->Search("c", Query("Word" + id, SearchMode::kVector)));
      if (i % 3 == 0) {
        EXPECT_NE(top, id);
      } else {
        EXPECT_EQ(top, id);
      }
    }
  }
}

TEST_F(PostgresStoreTest, TwoCharacterChineseWordsAreFound) {
  auto s = Replica();
  ASSERT_TRUE(s->CreateCollection("zh", "t", {}, {}).ok());
  ASSERT_TRUE(s->Upsert("zh", {{"panda", "", "", "", "大熊猫主要吃竹子。"},
                               {"tea", "", "", "", "龙井茶产于杭州。"}})
                  .ok());
  EXPECT_EQ(Top(s->Search("zh", Query("熊猫", SearchMode::kKeyword))), "panda");
  EXPECT_EQ(Top(s->Search("zh", Query("杭州", SearchMode::kKeyword))), "tea");
  EXPECT_EQ(Top(s->Search("zh", Query("茶", SearchMode::kKeyword))), "tea");
  EXPECT_EQ(Top(s->Search("zh", Query("熊", SearchMode::kKeyword))), "panda");
}

TEST_F(PostgresStoreTest, ANewerSchemaIsRefused) {
  { auto s = Replica(); }
  const std::string db = uri_.substr(uri_.rfind('/') + 1);
  ASSERT_TRUE(
      server_->Exec(db, "UPDATE lumen_schema_version SET version = 7").ok());
  EXPECT_THAT(
      KnowledgeStore::Open(StoreOptions{uri_, "", &embedder_, {}}),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               ::testing::AllOf(HasSubstr("version 7"), HasSubstr("newer"))));
}

TEST(StoreLocationTest, PasswordsAreRedactedForLogs) {
  EXPECT_TRUE(IsPostgresLocation("postgresql://h/db"));
  EXPECT_TRUE(IsPostgresLocation("postgres://h/db"));
  EXPECT_FALSE(IsPostgresLocation("/var/lib/lumen"));
  EXPECT_EQ(RedactLocation("/var/lib/lumen"), "/var/lib/lumen");
  EXPECT_EQ(RedactLocation("postgresql://lumen:s3cr@t@db.example:5432/kb"),
            "postgresql://lumen:***@db.example:5432/kb");
  EXPECT_EQ(RedactLocation("postgresql://lumen@db/kb"),
            "postgresql://lumen@db/kb");
  EXPECT_EQ(
      RedactLocation("postgres://db/kb?user=u&password=pw&sslmode=require"),
      "postgres://db/kb?user=u&password=***&sslmode=require");
  EXPECT_EQ(RedactLocation("postgresql://h:5432/kb"), "postgresql://h:5432/kb");
}

TEST(PostgresOutageTest, UnavailableWhileDownThenRecoversByItself) {
  auto server = lumen::testing::PgServer::Start();
  if (!server.ok()) GTEST_SKIP() << "no PostgreSQL: " << server.status();
  auto db = (*server)->CreateDatabase();
  ASSERT_TRUE(db.ok());
  lumen::testing::HashingEmbedder embedder;
  const StoreOptions options{
      (*server)->Uri(*db), lumen::testing::MakeTempDir(), &embedder, {}};
  auto a = KnowledgeStore::Open(options);
  auto b = KnowledgeStore::Open(StoreOptions{
      options.location, lumen::testing::MakeTempDir(), &embedder, {}});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->CreateCollection("c", "t", {}, {}).ok());
  ASSERT_TRUE(
      (*a)->Upsert("c", {{"x", "", "", "", "Before the outage."}}).ok());

  ASSERT_TRUE((*server)->Stop().ok());
  SearchRequest q;
  q.query = "outage";
  for (KnowledgeStore* s : {a->get(), b->get()}) {
    EXPECT_THAT(s->Search("c", q), StatusIs(absl::StatusCode::kUnavailable,
                                            HasSubstr("unavailable")));
    EXPECT_THAT(s->Upsert("c", {{"y", "", "", "", "During."}}),
                StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
    EXPECT_THAT(s->GetCollection("c"),
                StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  }

  ASSERT_TRUE((*server)->Restart().ok());
  // No restart of the stores: the next calls reconnect.
  auto hits = (*b)->Search("c", q);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_TRUE((*a)->Upsert("c", {{"z", "", "", "", "After the outage."}}).ok());
  auto* kb_a = static_cast<KnowledgeBase*>(a->get());
  auto* kb_b = static_cast<KnowledgeBase*>(b->get());
  // B's listener reconnected too and follows A's writes again.
  EXPECT_TRUE(kb_b->AwaitApplied("c", *kb_a->AppliedSequence("c"),
                                 Clock::now() + std::chrono::seconds(10))
                  .ok());
  EXPECT_EQ((*b)->GetCollection("c")->documents, 2);
}

}  // namespace
}  // namespace lumen::retrieval
