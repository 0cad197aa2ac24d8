// The knowledge-store suite: one set of tests, run against every backend
// (tests/retrieval/store_backends.h), so SQLite and PostgreSQL behave the
// same for search, updates, deletes, restarts, ownership, sharing and
// embedding models.

#include "retrieval/knowledge_store.h"

#include <chrono>
#include <future>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/retrieval/blocking_embedder.h"
#include "tests/retrieval/hashing_embedder.h"
#include "tests/retrieval/store_backends.h"
#include "tests/test_support.h"

namespace lumen::retrieval {
namespace {

using ::testing::HasSubstr;

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto backend = lumen::testing::MakeStoreBackend(GetParam());
    if (absl::IsUnavailable(backend.status())) {
      GTEST_SKIP() << GetParam() << " is not available: " << backend.status();
    }
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
  }
  // Opens (or reopens: a restart) the store on this test's database.
  std::unique_ptr<KnowledgeStore> Open(bool with_embedder = true) {
    return OpenWith(with_embedder ? &embedder_ : nullptr);
  }
  std::unique_ptr<KnowledgeStore> OpenWith(Embedder* embedder) {
    auto s = backend_->Open(embedder, ChunkerOptions{40, 8});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  static std::vector<std::string> Ids(
      const absl::StatusOr<std::vector<ChunkHit>>& hits) {
    std::vector<std::string> ids;
    if (hits.ok()) {
      for (const ChunkHit& h : *hits) ids.push_back(h.document_id);
    }
    return ids;
  }
  static SearchRequest Query(const std::string& text, SearchMode mode,
                             int top_k = 5) {
    SearchRequest q;
    q.query = text;
    q.mode = mode;
    q.top_k = top_k;
    return q;
  }

  std::unique_ptr<lumen::testing::StoreBackend> backend_;
  lumen::testing::HashingEmbedder embedder_;
};

INSTANTIATE_TEST_SUITE_P(
    Backends, StoreTest,
    ::testing::ValuesIn(lumen::testing::StoreBackendNames()),
    [](const ::testing::TestParamInfo<std::string>& info) {
      return info.param;
    });

TEST_P(StoreTest, UpsertIsIdempotentAndSearchFindsPassages) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("docs", "acme", {}, {}).ok());
  EXPECT_THAT(s->CreateCollection("docs", "acme", {}, {}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("'docs'")));
  EXPECT_THAT(
      s->CreateCollection("bad name!", "acme", {}, {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad name!")));
  std::vector<DocumentInput> docs = {
      {"a", "file://a.txt", "Pandas", R"({"lang":"en","team":"zoo"})",
       "Giant pandas eat bamboo for most of the day. They live in the "
       "mountains of China."},
      {"b", "file://b.txt", "Rockets", R"({"lang":"en","team":"space"})",
       "Rockets burn liquid oxygen and kerosene. The first stage lifts the "
       "rocket off the pad."},
      {"c", "file://c.txt", "熊猫", R"({"lang":"zh"})",
       "大熊猫主要吃竹子。它们生活在中国的山区。"}};
  auto r = s->Upsert("docs", docs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inserted, 3);
  auto again = s->Upsert("docs", docs);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->unchanged, 3);
  EXPECT_EQ(again->inserted + again->updated, 0);

  for (SearchMode mode :
       {SearchMode::kKeyword, SearchMode::kVector, SearchMode::kHybrid}) {
    SearchRequest q;
    q.query = "what do pandas eat bamboo";
    q.top_k = 2;
    q.mode = mode;
    auto hits = s->Search("docs", q);
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_FALSE(hits->empty());
    EXPECT_EQ((*hits)[0].document_id, "a") << static_cast<int>(mode);
    EXPECT_EQ((*hits)[0].title, "Pandas");
    EXPECT_EQ((*hits)[0].collection, "docs");
  }
  // Chinese keyword search through the trigram tokenizer.
  SearchRequest zh;
  zh.query = "熊猫吃竹子";
  zh.mode = SearchMode::kKeyword;
  auto zh_hits = s->Search("docs", zh);
  ASSERT_TRUE(zh_hits.ok());
  ASSERT_FALSE(zh_hits->empty());
  EXPECT_EQ((*zh_hits)[0].document_id, "c");
  // Metadata filter.
  SearchRequest f;
  f.query = "the rocket stage and pandas";
  f.filter = {{"team", "space"}};
  auto filtered = s->Search("docs", f);
  ASSERT_TRUE(filtered.ok());
  ASSERT_FALSE(filtered->empty());
  for (const ChunkHit& h : *filtered) EXPECT_EQ(h.document_id, "b");
  // Update and delete.
  docs[1].text = "Rockets now burn methane. Pandas are not involved.";
  auto up = s->Upsert("docs", {docs[1]});
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->updated, 1);
  EXPECT_EQ(*s->DeleteDocuments("docs", {"a", "missing"}), 1);
  SearchRequest gone;
  gone.query = "Giant pandas bamboo mountains";
  gone.mode = SearchMode::kVector;
  auto gone_hits =
      s->Search("docs", gone);  // keep the StatusOr alive for the loop
  ASSERT_TRUE(gone_hits.ok());
  for (const ChunkHit& h : *gone_hits) EXPECT_NE(h.document_id, "a");
}

TEST_P(StoreTest, MalformedDocumentsAreRejectedWholeBatch) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  std::vector<DocumentInput> docs = {{"ok", "", "", "", "fine text here"},
                                     {"bad", "", "", "[1,2]", "text"}};
  EXPECT_THAT(s->Upsert("c", docs),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("documents[1] (bad) metadata")));
  EXPECT_EQ(s->GetCollection("c")->documents, 0);
  EXPECT_THAT(s->Upsert("c", {{"", "", "", "", "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("documents[0].id")));
  EXPECT_THAT(s->Upsert("nope", {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
}

TEST_P(StoreTest, IndexIsRebuiltOrCaughtUpAfterRestart) {
  {
    auto s = Open();
    ASSERT_TRUE(s->CreateCollection("c", "t", {"u"}, {}).ok());
    ASSERT_TRUE(
        s->Upsert("c", {{"x", "", "", "", "Volcanoes erupt lava and ash."}})
            .ok());
    ASSERT_TRUE(s->SaveIndexes().ok());
    // Written after the save: must be caught up from the change log.
    ASSERT_TRUE(
        s->Upsert("c", {{"y", "", "", "", "Glaciers carve valleys slowly."}})
            .ok());
  }
  auto s = Open();
  auto info = s->GetCollection("c");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->documents, 2);
  EXPECT_EQ(info->shared_with, std::vector<std::string>{"u"});
  SearchRequest q;
  q.query = "glaciers carve valleys";
  q.mode = SearchMode::kVector;
  auto hits = s->Search("c", q);
  ASSERT_TRUE(hits.ok());
  ASSERT_FALSE(hits->empty());
  EXPECT_EQ((*hits)[0].document_id, "y");
}

TEST_P(StoreTest, TombstonesAreCompactedAway) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  // 300 documents, then delete 290: the index is rebuilt without tombstones
  // and search still finds the survivors.
  for (int i = 0; i < 300; i += 50) {
    std::vector<DocumentInput> batch;
    for (int j = i; j < i + 50; ++j) {
      batch.push_back({absl::StrCat("d", j), "", "", "",
                       absl::StrCat("Document ", j, " mentions word", j, ".")});
    }
    ASSERT_TRUE(s->Upsert("c", batch).ok());
  }
  std::vector<std::string> ids;
  for (int j = 10; j < 300; ++j) ids.push_back(absl::StrCat("d", j));
  ASSERT_TRUE(s->DeleteDocuments("c", {"d299"}).ok());
  EXPECT_EQ(*s->IndexTombstones("c"),
            1u);  // below the threshold: kept as a tombstone
  ids.pop_back();
  ASSERT_EQ(*s->DeleteDocuments("c", ids), 289);
  EXPECT_EQ(*s->IndexTombstones("c"), 0u);  // compacted
  SearchRequest q;
  q.query = "Document 3 mentions word3.";
  q.mode = SearchMode::kVector;
  q.top_k = 10;
  auto hits = s->Search("c", q);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 10u);  // exactly the 10 survivors
  for (const ChunkHit& h : *hits)
    EXPECT_LT(std::stoi(h.document_id.substr(1)), 10);
  EXPECT_EQ((*hits)[0].document_id, "d3");
}

TEST_P(StoreTest, WithoutEmbedderCollectionsAreKeywordOnly) {
  auto s = Open(/*with_embedder=*/false);
  ASSERT_TRUE(s->CreateCollection("k", "t", {}, {}).ok());
  EXPECT_EQ(s->GetCollection("k")->dim, 0);
  ASSERT_TRUE(
      s->Upsert("k", {{"d", "", "", "", "Keyword search still works fine."}})
          .ok());
  SearchRequest q;
  q.query = "keyword search";
  auto hybrid = s->Search("k", q);  // falls back to keywords
  ASSERT_TRUE(hybrid.ok());
  EXPECT_EQ(hybrid->size(), 1u);
  q.mode = SearchMode::kVector;
  EXPECT_THAT(s->Search("k", q), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("keyword-only")));
}

// An ingest holds no lock while it embeds: a search on the same collection
// answers while the upsert is blocked inside Embed().
TEST_P(StoreTest, SearchRunsWhileAnUpsertIsEmbedding) {
  lumen::testing::BlockingEmbedder embedder("BLOCK");
  auto s = OpenWith(&embedder);
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  ASSERT_TRUE(
      s->Upsert("c", {{"a", "", "", "", "Volcanoes erupt lava."}}).ok());
  auto upsert = std::async(std::launch::async, [&] {
    return s->Upsert("c", {{"b", "", "", "", "BLOCK glaciers carve valleys."}});
  });
  embedder.WaitUntilBlocked();
  auto search = std::async(std::launch::async, [&] {
    auto hits =
        s->Search("c", Query("volcanoes erupt lava", SearchMode::kHybrid));
    auto info = s->GetCollection("c");
    return hits.ok() && info.ok() && !hits->empty() &&
           (*hits)[0].document_id == "a" && info->documents == 1;
  });
  // A bound, not a sleep: a search takes milliseconds; on failure the
  // upsert is released so that the test ends instead of hanging.
  const bool finished =
      search.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  embedder.Release();
  EXPECT_TRUE(finished) << "search waited for the upsert's embedding";
  EXPECT_TRUE(search.get());
  auto r = upsert.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inserted, 1);
  EXPECT_EQ(s->GetCollection("c")->documents, 2);
}

TEST_P(StoreTest, DeletedDocumentsLeaveEverySearchModeAndTheCounts) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  ASSERT_TRUE(
      s->Upsert("c", {{"a", "", "", "", "Aardvarks dig burrows at night."},
                      {"b", "", "", "", "Aardvarks eat termites and ants."},
                      {"z", "", "", "", "Zebras graze on the savanna."}})
          .ok());
  EXPECT_EQ(s->TotalDocuments(), 3);
  EXPECT_EQ(*s->DeleteDocuments("c", {"a", "b", "a", "nope"}), 2);
  EXPECT_EQ(*s->DeleteDocuments("c", {"a"}), 0);
  for (int restart = 0; restart < 2; ++restart) {
    for (SearchMode mode :
         {SearchMode::kKeyword, SearchMode::kVector, SearchMode::kHybrid}) {
      auto hits = s->Search("c", Query("aardvarks termites burrows", mode));
      ASSERT_TRUE(hits.ok()) << hits.status();
      for (const std::string& id : Ids(hits)) EXPECT_EQ(id, "z");
    }
    auto info = s->GetCollection("c");
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->documents, 1);
    EXPECT_EQ(info->chunks, 1);
    EXPECT_EQ(s->TotalDocuments(), 1);
    s = Open();  // the deletes survive a restart
  }
}

TEST_P(StoreTest, UpdatesReplaceChunksAndCountsFollow) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  std::string long_text;
  for (int i = 0; i < 20; ++i)
    long_text += "Marmots whistle loudly number " + std::to_string(i) + ". ";
  auto first = s->Upsert("c", {{"d", "", "", "", long_text}});
  ASSERT_TRUE(first.ok());
  ASSERT_GT(first->chunks, 3);
  EXPECT_EQ(s->GetCollection("c")->chunks, first->chunks);
  auto second = s->Upsert("c", {{"d", "", "", "", "Otters hold hands."}});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->updated, 1);
  EXPECT_EQ(second->chunks, 1);
  auto info = s->GetCollection("c");
  EXPECT_EQ(info->documents, 1);
  EXPECT_EQ(info->chunks, 1);
  auto old =
      s->Search("c", Query("marmots whistle loudly", SearchMode::kKeyword));
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->empty());
  auto now =
      s->Search("c", Query("otters hold hands", SearchMode::kVector, 10));
  ASSERT_TRUE(now.ok());
  ASSERT_EQ(now->size(), 1u);
  EXPECT_EQ((*now)[0].text, "Otters hold hands.");
  EXPECT_EQ((*now)[0].start, 0);
  EXPECT_EQ((*now)[0].end, 18);
}

TEST_P(StoreTest, DeletingACollectionDeletesItsDocumentsAndFreesTheName) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  ASSERT_TRUE(
      s->Upsert("c", {{"a", "", "", "", "Lighthouses guide ships."}}).ok());
  ASSERT_TRUE(s->DeleteCollection("c").ok());
  EXPECT_THAT(s->GetCollection("c"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'c'")));
  EXPECT_THAT(s->Search("c", Query("lighthouses", SearchMode::kKeyword)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'c'")));
  EXPECT_THAT(s->Upsert("c", {{"a", "", "", "", "x"}}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'c'")));
  EXPECT_THAT(s->DeleteCollection("c"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'c'")));
  EXPECT_EQ(s->TotalDocuments(), 0);
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  for (SearchMode mode :
       {SearchMode::kKeyword, SearchMode::kVector, SearchMode::kHybrid}) {
    auto hits = s->Search("c", Query("lighthouses guide ships", mode));
    ASSERT_TRUE(hits.ok()) << hits.status();
    EXPECT_TRUE(hits->empty());
  }
  s = Open();
  EXPECT_EQ(s->GetCollection("c")->documents, 0);
}

TEST_P(StoreTest, OwnersAndSharingAreKeptAcrossRestarts) {
  {
    auto s = Open();
    ASSERT_TRUE(s->CreateCollection("beta", "t2", {}, {}).ok());
    ASSERT_TRUE(s->CreateCollection("alpha", "t1", {"t2", "t3"},
                                    HnswOptions{8, 50, 20, false})
                    .ok());
  }
  auto s = Open();
  auto all = s->ListCollections();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  const CollectionInfo& a = (*all)[0];
  EXPECT_EQ(a.name, "alpha");
  EXPECT_EQ(a.owner, "t1");
  EXPECT_EQ(a.shared_with, (std::vector<std::string>{"t2", "t3"}));
  EXPECT_EQ(a.hnsw.m, 8);
  EXPECT_EQ(a.hnsw.ef_construction, 50);
  EXPECT_EQ(a.hnsw.ef_search, 20);
  EXPECT_FALSE(a.hnsw.cosine);
  EXPECT_EQ(a.dim, embedder_.dim());
  EXPECT_EQ(a.embedding_model, embedder_.model());
  EXPECT_EQ((*all)[1].name, "beta");
  EXPECT_EQ((*all)[1].owner, "t2");
  EXPECT_TRUE((*all)[1].shared_with.empty());
}

TEST_P(StoreTest, MetadataFiltersApplyInEveryMode) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  std::vector<DocumentInput> docs;
  for (int i = 0; i < 12; ++i) {
    docs.push_back({"d" + std::to_string(i), "", "",
                    i % 3 == 0 ? R"({"team":"red","year":2020})"
                               : R"({"team":"blue","year":2021})",
                    "Beacons shine over the harbor wall, note " +
                        std::to_string(i) + "."});
  }
  ASSERT_TRUE(s->Upsert("c", docs).ok());
  for (SearchMode mode :
       {SearchMode::kKeyword, SearchMode::kVector, SearchMode::kHybrid}) {
    SearchRequest q = Query("beacons shine harbor", mode, 10);
    q.filter = {{"team", "red"}};
    auto hits = s->Search("c", q);
    ASSERT_TRUE(hits.ok()) << hits.status();
    EXPECT_EQ(hits->size(), 4u) << static_cast<int>(mode);
    for (const std::string& id : Ids(hits))
      EXPECT_EQ(std::stoi(id.substr(1)) % 3, 0) << id;
    q.filter = {{"year", "2020"}, {"team", "red"}};
    EXPECT_EQ(s->Search("c", q)->size(), 4u);
    q.filter = {{"year", "2020"}, {"team", "blue"}};
    EXPECT_TRUE(s->Search("c", q)->empty());
    q.filter = {{"missing", "x"}};
    EXPECT_TRUE(s->Search("c", q)->empty());
  }
}

TEST_P(StoreTest, AnotherEmbeddingModelIsRefusedUntilReembedded) {
  lumen::testing::HashingEmbedder model_a(64, "model-a"),
      model_b(32, "model-b");
  {
    auto s = OpenWith(&model_a);
    ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
    std::vector<DocumentInput> docs;
    for (int i = 0; i < 30; ++i) {
      docs.push_back({absl::StrCat("d", i), "", "", "",
                      absl::StrCat("Comets carry ice number ", i, ". Word", i,
                                   " is unique.")});
    }
    ASSERT_TRUE(s->Upsert("c", docs).ok());
  }
  auto s = OpenWith(&model_b);
  for (SearchMode mode : {SearchMode::kVector, SearchMode::kHybrid}) {
    EXPECT_THAT(s->Search("c", Query("comets", mode)),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         ::testing::AllOf(HasSubstr("'model-a'"),
                                          HasSubstr("'model-b'"),
                                          HasSubstr("reembed c"))));
  }
  EXPECT_FALSE(
      Ids(s->Search("c", Query("comets carry ice", SearchMode::kKeyword)))
          .empty());
  EXPECT_THAT(
      s->Upsert("c", {{"new", "", "", "", "More comets."}}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("'model-a'")));
  std::vector<ReembedProgress> progress;
  ASSERT_TRUE(s->Reembed("c", [&](const ReembedProgress& p) {
                 progress.push_back(p);
                 return true;
               }).ok());
  ASSERT_FALSE(progress.empty());
  const int64_t chunks = s->GetCollection("c")->chunks;
  EXPECT_EQ(progress.back().done, chunks);
  EXPECT_EQ(progress.back().total, chunks);
  for (size_t i = 1; i < progress.size(); ++i)
    EXPECT_GT(progress[i].done, progress[i - 1].done);
  auto info = s->GetCollection("c");
  EXPECT_EQ(info->dim, 32);
  EXPECT_EQ(info->embedding_model, model_b.model());
  EXPECT_FALSE(info->reembedding);
  auto hits = s->Search("c", Query("Word17 is unique", SearchMode::kVector));
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_EQ((*hits)[0].document_id, "d17");
  ASSERT_TRUE(s->Upsert("c", {{"new", "", "", "", "More comets."}}).ok());
  // The store remembers: model A is now the stranger.
  s = OpenWith(&model_a);
  EXPECT_THAT(s->Search("c", Query("comets", SearchMode::kVector)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("'model-a'"),
                                        HasSubstr("'model-b'"))));
}

TEST_P(StoreTest, ReembedGivesAKeywordOnlyCollectionVectors) {
  {
    auto s = Open(/*with_embedder=*/false);
    ASSERT_TRUE(s->CreateCollection("k", "t", {}, {}).ok());
    ASSERT_TRUE(s->Upsert("k", {{"a", "", "", "", "Puffins nest on cliffs."},
                                {"b", "", "", "", "Moles tunnel underground."}})
                    .ok());
  }
  auto s = Open();
  EXPECT_THAT(s->Search("k", Query("puffins", SearchMode::kVector)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("keyword-only")));
  EXPECT_EQ(Ids(s->Search("k", Query("puffins nest", SearchMode::kHybrid))),
            std::vector<std::string>{"a"});
  // Stopped by its progress callback (a cancelled RPC): Cancelled, and the
  // collection is not yet searchable by vector; a later run completes it.
  EXPECT_THAT(s->Reembed("k", [](const ReembedProgress&) { return false; }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("stopped")));
  EXPECT_TRUE(s->GetCollection("k")->reembedding);
  ASSERT_TRUE(s->Reembed("k", nullptr).ok());
  EXPECT_FALSE(s->GetCollection("k")->reembedding);
  auto hits =
      s->Search("k", Query("moles tunnel underground", SearchMode::kVector));
  ASSERT_TRUE(hits.ok()) << hits.status();
  EXPECT_EQ((*hits)[0].document_id, "b");
}

TEST_P(StoreTest, ChineseKeywordSearch) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("zh", "t", {}, {}).ok());
  ASSERT_TRUE(
      s->Upsert(
           "zh",
           {{"panda", "", "", "", "大熊猫主要吃竹子。它们生活在中国的山区。"},
            {"wall", "", "", "", "长城有两万多公里长，是古代的防御工程。"},
            {"code", "", "", "", "Python 是一种编程语言，适合数据分析。"},
            {"tea", "", "", "", "龙井茶产于杭州西湖附近的山区。"}})
          .ok());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"熊猫吃竹子", "panda"},
      {"长城有多长", "wall"},
      {"Python 编程语言", "code"},
      {"西湖龙井茶", "tea"},
  };
  for (const auto& [query, want] : cases) {
    auto hits = s->Search("zh", Query(query, SearchMode::kKeyword));
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_FALSE(hits->empty()) << query;
    EXPECT_EQ((*hits)[0].document_id, want) << query;
  }
}

TEST_P(StoreTest, ConcurrentUpsertsDeletesAndSearchesAgree) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  constexpr int kWriters = 4, kDocs = 12;
  std::vector<std::future<bool>> work;
  for (int w = 0; w < kWriters; ++w) {
    work.push_back(std::async(std::launch::async, [&, w] {
      bool ok = true;
      for (int i = 0; i < kDocs; ++i) {
        const std::string id = absl::StrCat("w", w, "d", i);
        ok &= s->Upsert("c", {{id, "", "", "",
                               absl::StrCat("Token", id, " appears here.")}})
                  .ok();
        // Every other document is rewritten, every fourth deleted.
        if (i % 2 == 0) {
          ok &= s->Upsert("c", {{id, "", "", "",
                                 absl::StrCat("Token", id, " again.")}})
                    .ok();
        }
        if (i % 4 == 0) ok &= s->DeleteDocuments("c", {id}).ok();
      }
      return ok;
    }));
  }
  for (int r = 0; r < 2; ++r) {
    work.push_back(std::async(std::launch::async, [&] {
      bool ok = true;
      for (int i = 0; i < 20; ++i)
        ok &= s->Search("c", Query("token appears", SearchMode::kHybrid)).ok();
      return ok;
    }));
  }
  for (auto& f : work) EXPECT_TRUE(f.get());
  const int64_t expected = kWriters * (kDocs - kDocs / 4);
  EXPECT_EQ(s->GetCollection("c")->documents, expected);
  EXPECT_EQ(s->GetCollection("c")->chunks, expected);
  for (int w = 0; w < kWriters; ++w) {
    for (int i : {1, 2, 4}) {
      const std::string id = absl::StrCat("w", w, "d", i);
      auto hits = s->Search(
          "c", Query(absl::StrCat("Token", id), SearchMode::kVector, 1));
      ASSERT_TRUE(hits.ok());
      if (i % 4 == 0) {
        EXPECT_NE(Ids(hits), std::vector<std::string>{id}) << id;
      } else {
        EXPECT_EQ(Ids(hits), std::vector<std::string>{id}) << id;
      }
    }
  }
}

}  // namespace
}  // namespace lumen::retrieval
