#include "retrieval/knowledge_store.h"

#include <random>
#include <set>

#include "base/unicode.h"
#include "gtest/gtest.h"
#include "retrieval/chunker.h"
#include "retrieval/vector_index.h"
#include "tests/retrieval/hashing_embedder.h"
#include "tests/test_support.h"

namespace lumen::retrieval {
namespace {

using ::testing::HasSubstr;

TEST(ChunkerTest, EnglishBreaksAtSentenceEndsWithOverlap) {
  std::string text;
  for (int i = 0; i < 30; ++i)
    text += "Sentence number " + std::to_string(i) + " is here. ";
  ChunkerOptions o{20, 8};
  auto chunks = ChunkText(text, o, EstimateTokens);
  ASSERT_GT(chunks.size(), 3u);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    EXPECT_LE(EstimateTokens(c.text), 20) << c.text;
    EXPECT_EQ(c.text, text.substr(c.start, c.end - c.start));
    EXPECT_EQ(c.text.rfind("Sentence", 0), 0u)
        << "starts at a sentence: " << c.text;
    if (i + 1 < chunks.size()) {
      EXPECT_LT(chunks[i + 1].start, c.end) << "consecutive chunks overlap";
    }
  }
  EXPECT_EQ(chunks.back().end, static_cast<int64_t>(text.size()));
}

TEST(ChunkerTest, ChineseBreaksAtChinesePunctuationNeverInsideACharacter) {
  std::string text;
  for (int i = 0; i < 20; ++i)
    text += "小猫在花园里玩耍。它很开心！你喜欢吗？我们走吧；";
  ChunkerOptions o{30, 6};
  auto chunks = ChunkText(text, o, EstimateTokens);
  ASSERT_GT(chunks.size(), 2u);
  for (const Chunk& c : chunks) {
    EXPECT_EQ(IncompleteUtf8Suffix(c.text), 0u);
    for (uint32_t cp : DecodeUtf8(c.text)) EXPECT_NE(cp, 0xFFFDu);
    EXPECT_LE(EstimateTokens(c.text), 30);
    const std::string tail = c.text.substr(c.text.size() - 3);
    EXPECT_TRUE(tail == "。" || tail == "！" || tail == "？" || tail == "；")
        << c.text;
  }
  // A sentence longer than the budget is cut at character boundaries.
  std::string long_zh;
  for (int i = 0; i < 200; ++i) long_zh += "字";
  for (const Chunk& c : ChunkText(long_zh, o, EstimateTokens)) {
    EXPECT_EQ(IncompleteUtf8Suffix(c.text), 0u);
    EXPECT_LE(EstimateTokens(c.text), 30);
  }
}

TEST(VectorIndexTest, RecallAtTenOnTwentyThousandRandomVectors) {
  constexpr int kDim = 384, kN = 20000, kQueries = 100, kK = 10;
  std::mt19937 rng(5);
  std::normal_distribution<float> n;
  std::vector<float> data(static_cast<size_t>(kN) * kDim);
  for (float& x : data) x = n(rng);
  for (int i = 0; i < kN; ++i)
    Normalize(&data[static_cast<size_t>(i) * kDim], kDim);
  auto index = VectorIndex::Create(kDim, HnswOptions{32, 200, 600}, kN);
  for (int i = 0; i < kN; ++i)
    index->Add(i, &data[static_cast<size_t>(i) * kDim]);
  int found = 0;
  for (int q = 0; q < kQueries; ++q) {
    std::vector<float> query(kDim);
    for (float& x : query) x = n(rng);
    Normalize(query.data(), kDim);
    std::vector<std::pair<float, int>> exact;
    for (int i = 0; i < kN; ++i) {
      float dot = 0;
      for (int d = 0; d < kDim; ++d)
        dot += query[d] * data[static_cast<size_t>(i) * kDim + d];
      exact.push_back({-dot, i});
    }
    std::partial_sort(exact.begin(), exact.begin() + kK, exact.end());
    std::set<int> truth;
    for (int i = 0; i < kK; ++i) truth.insert(exact[i].second);
    for (const VectorHit& h : index->Search(query.data(), kK))
      found += truth.count(h.label);
  }
  const double recall = static_cast<double>(found) / (kQueries * kK);
  std::cout << "HNSW recall@10 on 20,000 x 384: " << recall << "\n";
  EXPECT_GE(recall, 0.95);
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = lumen::testing::MakeTempDir(); }
  std::unique_ptr<KnowledgeStore> Open(bool with_embedder = true) {
    auto s = KnowledgeStore::Open(dir_, with_embedder ? &embedder_ : nullptr,
                                  ChunkerOptions{40, 8});
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }
  std::string dir_;
  lumen::testing::HashingEmbedder embedder_;
};

TEST_F(StoreTest, UpsertIsIdempotentAndSearchFindsPassages) {
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

TEST_F(StoreTest, MalformedDocumentsAreRejectedWholeBatch) {
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

TEST_F(StoreTest, IndexIsRebuiltOrCaughtUpAfterRestart) {
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

TEST(VectorIndexTest, InnerProductKeepsMagnitudes) {
  HnswOptions ip;
  ip.cosine = false;
  auto index = VectorIndex::Create(2, ip);
  const float small[] = {1, 0}, big[] = {3, 0.5f};
  index->Add(1, small);
  index->Add(2, big);
  const float q[] = {1, 0};
  auto hits = index->Search(q, 2);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].label, 2);  // the longer vector wins on inner product
  EXPECT_NEAR(hits[0].score, 3.0f, 1e-5);
  auto cos = VectorIndex::Create(2, HnswOptions{});
  cos->Add(1, small);
  cos->Add(2, big);
  EXPECT_EQ(cos->Search(q, 2)[0].label, 1);  // but not on cosine
}

TEST_F(StoreTest, TombstonesAreCompactedAway) {
  auto s = Open();
  ASSERT_TRUE(s->CreateCollection("c", "t", {}, {}).ok());
  // 300 documents, then delete 290: the index is rebuilt without tombstones
  // and search still finds the survivors.
  for (int i = 0; i < 300; i += 50) {
    std::vector<DocumentInput> batch;
    for (int j = i; j < i + 50; ++j) {
      batch.push_back({"d" + std::to_string(j), "", "", "",
                       "Document " + std::to_string(j) + " mentions word" +
                           std::to_string(j) + "."});
    }
    ASSERT_TRUE(s->Upsert("c", batch).ok());
  }
  std::vector<std::string> ids;
  for (int j = 10; j < 300; ++j) ids.push_back("d" + std::to_string(j));
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

TEST_F(StoreTest, WithoutEmbedderCollectionsAreKeywordOnly) {
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

}  // namespace
}  // namespace lumen::retrieval
