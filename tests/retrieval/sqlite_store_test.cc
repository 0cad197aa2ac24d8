// Regression tests for the SQLite knowledge store's transactions (issue 18,
// defect 2): they look at the database file and at the statements the store
// compiles, which only the SQLite backend has.

#include <sqlite3.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "retrieval/knowledge_store.h"
#include "tests/retrieval/hashing_embedder.h"
#include "tests/retrieval/sqlite_probe.h"
#include "tests/test_support.h"

namespace lumen::retrieval {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A second connection to the store's database, as another process would
// have: no busy wait, so a lock the store forgot to release shows at once.
class Db {
 public:
  explicit Db(const std::string& dir) {
    const std::string path = dir + "/knowledge.db";
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
  }
  ~Db() { sqlite3_close(db_); }
  absl::Status Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK)
      return absl::OkStatus();
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    return absl::InternalError(msg);
  }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string Sentences(const std::string& word, int n) {
  std::string text;
  for (int i = 0; i < n; ++i)
    text += "The " + word + " number " + std::to_string(i) + " is here. ";
  return text;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    probe_.Reset();
    dir_ = lumen::testing::MakeTempDir();
  }
  void TearDown() override { probe_.Reset(); }
  std::unique_ptr<KnowledgeStore> Open(Embedder* embedder) {
    auto s = KnowledgeStore::Open(dir_, embedder, ChunkerOptions{40, 8});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  lumen::testing::SqliteProbe& probe_ = lumen::testing::SqliteProbe::Install();
  std::string dir_;
  lumen::testing::HashingEmbedder embedder_;
};

// Defect: the list of replaced chunks accumulated across the documents of
// one upsert, so each later document deleted the earlier ones' chunks again
// and wrote a second "removed" change-log row for them.
TEST_F(SqliteStoreTest, UpsertOfSeveralDocumentsLogsEachRemovalOnce) {
  auto s = Open(&embedder_);
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  std::vector<DocumentInput> docs;
  for (const char* id : {"a", "b", "c"}) {
    docs.push_back({id, "", "", "", Sentences(std::string("alpha") + id, 6)});
  }
  ASSERT_TRUE(s->Upsert("c", docs).ok());
  for (auto& d : docs) d.text = Sentences("beta" + d.id, 6);
  auto r = s->Upsert("c", docs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->updated, 3);
  s.reset();
  Db db(dir_);
  const int64_t old_chunks =
      db.Int("SELECT COUNT(DISTINCT chunk_id) FROM changes WHERE op = 0");
  EXPECT_GT(old_chunks, 3);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM changes WHERE op = 0"), old_chunks)
      << "a replaced chunk has more than one removal in the change log";
  // Every surviving chunk has its keyword row, and no keyword row is stale.
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM chunks_fts"),
            db.Int("SELECT COUNT(*) FROM chunks"));
}

// Defect: DeleteDocuments returned from inside BEGIN IMMEDIATE on an error,
// leaving the transaction (and the database's write lock) open: the partial
// delete stayed visible to the store and every later write failed.
TEST_F(SqliteStoreTest, FailedDeleteRollsBackAndReleasesTheDatabase) {
  auto s = Open(&embedder_);
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  ASSERT_TRUE(
      s->Upsert("c", {{"a", "", "", "", "Volcanoes erupt lava."}}).ok());
  Db db(dir_);
  ASSERT_TRUE(db.Exec("CREATE TRIGGER fail_chunk_delete BEFORE DELETE ON "
                      "chunks BEGIN SELECT RAISE(ABORT, 'injected'); END")
                  .ok());
  EXPECT_THAT(s->DeleteDocuments("c", {"a"}),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("injected")));
  // Nothing of the failed delete is left, and the write lock is free.
  EXPECT_EQ(s->GetCollection("c")->documents, 1);
  ASSERT_TRUE(db.Exec("DROP TRIGGER fail_chunk_delete").ok())
      << "the store still holds the database's write lock";
  auto r = s->Upsert("c", {{"b", "", "", "", "Glaciers carve valleys."}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM documents"), 2);
  EXPECT_EQ(*s->DeleteDocuments("c", {"a"}), 1);
}

// A write that fails in the middle of an upsert leaves nothing behind.
TEST_F(SqliteStoreTest, FailedUpsertRollsBackTheWholeBatch) {
  auto s = Open(&embedder_);
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  ASSERT_TRUE(s->Upsert("c", {{"a", "", "", "", Sentences("alpha", 4)}}).ok());
  Db db(dir_);
  const int64_t chunks = db.Int("SELECT COUNT(*) FROM chunks");
  const int64_t changes = db.Int("SELECT COUNT(*) FROM changes");
  ASSERT_TRUE(db.Exec("CREATE TRIGGER fail_doc BEFORE INSERT ON documents "
                      "WHEN NEW.doc_id = 'z' BEGIN SELECT RAISE(ABORT, "
                      "'injected'); END")
                  .ok());
  EXPECT_THAT(s->Upsert("c", {{"a", "", "", "", Sentences("gamma", 4)},
                              {"z", "", "", "", "Never stored."}}),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("injected")));
  ASSERT_TRUE(db.Exec("DROP TRIGGER fail_doc").ok());
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM chunks"), chunks);
  EXPECT_EQ(db.Int("SELECT COUNT(*) FROM changes"), changes);
  SearchRequest q;
  q.query = "alpha number";
  q.mode = SearchMode::kVector;
  auto hits = s->Search("c", q);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_FALSE(hits->empty());
  EXPECT_THAT((*hits)[0].text, HasSubstr("alpha"));
}

// Defect: statement results were not checked, so a statement that failed
// (here: the lookup of a document's content hash) was taken for "no row" and
// the upsert went on as if the document were new.
TEST_F(SqliteStoreTest, AFailingLookupFailsTheUpsert) {
  {
    auto s = Open(&embedder_);
    ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
    ASSERT_TRUE(
        s->Upsert("c", {{"a", "", "", "", Sentences("alpha", 4)}}).ok());
  }
  probe_.DenyRead("documents", "content_hash");
  auto s = Open(&embedder_);
  EXPECT_THAT(s->Upsert("c", {{"a", "", "", "", Sentences("delta", 4)}}),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("content_hash")));
  probe_.Reset();
  s.reset();
  s = Open(&embedder_);
  SearchRequest q;
  q.query = "alpha number";
  q.mode = SearchMode::kKeyword;
  auto hits = s->Search("c", q);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_FALSE(hits->empty());
  EXPECT_THAT((*hits)[0].text, HasSubstr("alpha"));
}

// Defect: every statement was prepared again for every row. With a
// statement cache each is compiled once per connection.
TEST_F(SqliteStoreTest, StatementsAreCompiledOncePerConnection) {
  auto s = Open(&embedder_);
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  for (int round = 0; round < 3; ++round) {
    std::vector<DocumentInput> docs;
    for (int d = 0; d < 4; ++d) {
      docs.push_back({"d" + std::to_string(d), "", "", "",
                      Sentences("round" + std::to_string(round), 12)});
    }
    auto r = s->Upsert("c", docs);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_GT(r->chunks, 8);
  }
  ASSERT_TRUE(s->DeleteDocuments("c", {"d0", "d1"}).ok());
  ASSERT_TRUE(s->DeleteDocuments("c", {"d2", "d3"}).ok());
  EXPECT_EQ(probe_.Compiles(SQLITE_INSERT, "chunks"), 1);
  EXPECT_LE(probe_.Compiles(SQLITE_INSERT, "changes"), 2);
  EXPECT_LE(probe_.Compiles(SQLITE_DELETE, "documents"), 2);
}

// A data directory written by the first releases (no schema_version
// table, no counters, no model columns) is migrated in place.
TEST_F(SqliteStoreTest, AnUnversionedDatabaseIsMigrated) {
  {
    Db db(dir_);
    ASSERT_TRUE(
        db.Exec(
              "CREATE TABLE collections(id INTEGER PRIMARY KEY, name TEXT "
              "UNIQUE NOT NULL, owner TEXT NOT NULL, shared_with TEXT NOT NULL "
              "DEFAULT '', dim INTEGER NOT NULL, hnsw_m INTEGER, "
              "ef_construction INTEGER, ef_search INTEGER, metric TEXT NOT "
              "NULL DEFAULT 'cosine');"
              "CREATE TABLE documents(collection_id INTEGER NOT NULL, doc_id "
              "TEXT NOT NULL, source TEXT, title TEXT, metadata TEXT NOT NULL "
              "DEFAULT '{}', content_hash TEXT NOT NULL, PRIMARY "
              "KEY(collection_id, doc_id));"
              "CREATE TABLE chunks(id INTEGER PRIMARY KEY AUTOINCREMENT, "
              "collection_id INTEGER NOT NULL, doc_id TEXT NOT NULL, ord "
              "INTEGER NOT NULL, text TEXT NOT NULL, start INTEGER, end "
              "INTEGER, embedding BLOB);"
              "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, "
              "tokenize='trigram');"
              "CREATE TABLE changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, "
              "collection_id INTEGER NOT NULL, chunk_id INTEGER NOT NULL, op "
              "INTEGER NOT NULL);"
              "INSERT INTO collections VALUES(1, 'old', 'acme', 'globex', 0, "
              "16, 200, 64, 'cosine');"
              "INSERT INTO documents VALUES(1, 'd', 's', 't', '{}', 'h');"
              "INSERT INTO chunks VALUES(1, 1, 'd', 0, 'Ancient scrolls "
              "survive.', 0, 24, NULL);"
              "INSERT INTO chunks_fts(rowid, text) VALUES(1, 'Ancient scrolls "
              "survive.');")
            .ok());
  }
  auto s = Open(&embedder_);
  auto info = s->GetCollection("old");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->documents, 1);
  EXPECT_EQ(info->chunks, 1);
  EXPECT_EQ(info->shared_with, std::vector<std::string>{"globex"});
  SearchRequest q;
  q.query = "ancient scrolls";
  q.mode = SearchMode::kKeyword;
  auto hits = s->Search("old", q);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].document_id, "d");
  s.reset();
  Db db(dir_);
  EXPECT_EQ(db.Int("SELECT version FROM schema_version"), 2);
}

TEST_F(SqliteStoreTest, ANewerSchemaIsRefusedUntouched) {
  { auto s = Open(&embedder_); }
  Db db(dir_);
  ASSERT_TRUE(db.Exec("UPDATE schema_version SET version = 99").ok());
  auto s = KnowledgeStore::Open(dir_, &embedder_);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition,
                          ::testing::AllOf(HasSubstr("version 99"),
                                           HasSubstr("newer"))));
  EXPECT_EQ(db.Int("SELECT version FROM schema_version"), 99);
}

}  // namespace
}  // namespace lumen::retrieval
