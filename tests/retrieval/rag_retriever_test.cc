#include "retrieval/rag_retriever.h"

#include "base/unicode.h"
#include "gtest/gtest.h"
#include "retrieval/chunker.h"
#include "tests/retrieval/hashing_embedder.h"
#include "tests/test_support.h"

namespace lumen::retrieval {
namespace {

using ::testing::HasSubstr;

// A fake tokenizer: one token per code point (so Chinese and English count
// alike), plus the chat template around the block.
int64_t CountCodepoints(const std::string& text) {
  return static_cast<int64_t>(DecodeUtf8(text).size());
}

// A final prompt the way a chat front end builds it: the RAG block as the
// system message, the question as the user message.
PromptBudget Budget(int64_t context, int64_t max_tokens,
                    const std::string& question,
                    std::vector<std::string>* rendered = nullptr) {
  PromptBudget b;
  b.context_size = context;
  b.max_tokens = max_tokens;
  b.count_prompt_tokens =
      [question,
       rendered](const std::string& block) -> absl::StatusOr<int64_t> {
    const std::string prompt =
        "<|system|>" + block + "<|user|>" + question + "<|assistant|>";
    if (rendered) rendered->push_back(prompt);
    return CountCodepoints(prompt);
  };
  return b;
}

ChunkHit Passage(const std::string& doc, const std::string& text,
                 int64_t start = 100) {
  ChunkHit h;
  h.collection = "c";
  h.document_id = doc;
  h.title = "T" + doc;
  h.text = text;
  h.start = start;
  h.end = start + static_cast<int64_t>(text.size());
  return h;
}

constexpr const char* kTemplate = "{passages}Q: {question}";

int64_t Tokens(const std::vector<ChunkHit>& passages, const std::string& q) {
  return *Budget(1 << 30, 0, q)
              .count_prompt_tokens(RenderRagBlock(kTemplate, passages, q));
}

TEST(RenderRagBlockTest, NumbersPassagesWithTitleAndSource) {
  ChunkHit a = Passage("a", "Alpha text.");
  ChunkHit b = Passage("b", "Beta text.");
  b.title.clear();
  b.source = "file://b.txt";
  EXPECT_EQ(
      RenderRagBlock(kTemplate, {a, b}, "why?"),
      "[1] Ta\nAlpha text.\n\n[2] b (file://b.txt)\nBeta text.\n\nQ: why?");
  EXPECT_EQ(RenderRagBlock(kDefaultRagTemplate, {}, "why?"),
            "Use the numbered passages below to answer. Cite the passages you "
            "use by number, like [1].\n\nQuestion: why?\nAnswer:");
}

TEST(FitPassagesTest, EverythingFitsWhenThereIsRoom) {
  const std::vector<ChunkHit> ranked = {
      Passage("a", "One. Two."), Passage("b", "Three."), Passage("c", "Four.")};
  auto ctx = FitPassages(ranked, "q", kTemplate, Budget(1000, 100, "q"));
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  ASSERT_EQ(ctx->citations.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ctx->citations[i].document_id, ranked[i].document_id);
    EXPECT_EQ(ctx->citations[i].text, ranked[i].text);
    EXPECT_EQ(ctx->citations[i].end, ranked[i].end);
  }
  EXPECT_EQ(ctx->block, RenderRagBlock(kTemplate, ranked, "q"));
  EXPECT_EQ(ctx->prompt_tokens, Tokens(ranked, "q"));
  EXPECT_EQ(ctx->truncated + ctx->dropped, 0);
}

TEST(FitPassagesTest, ALongPassageIsCutAtASentenceEnd) {
  std::string long_text;
  for (int i = 0; i < 10; ++i)
    long_text += "Sentence number " + std::to_string(i) + " says little. ";
  const ChunkHit first = Passage("a", "Short first passage.");
  const ChunkHit second = Passage("b", long_text, 1000);
  // Room for the first passage and about four sentences of the second.
  const int64_t context =
      Tokens({first, Passage("b", long_text.substr(0, 4 * 30))}, "q") + 50;
  auto ctx =
      FitPassages({first, second}, "q", kTemplate, Budget(context, 50, "q"));
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  ASSERT_EQ(ctx->citations.size(), 2u);
  EXPECT_EQ(ctx->truncated, 1);
  EXPECT_EQ(ctx->dropped, 0);
  const ChunkHit& cut = ctx->citations[1];
  EXPECT_LT(cut.text.size(), long_text.size());
  EXPECT_EQ(long_text.rfind(cut.text, 0), 0u) << "a prefix of the passage";
  EXPECT_EQ(cut.text.back(), '.') << "ends at a sentence end: " << cut.text;
  EXPECT_EQ(cut.start, 1000);
  EXPECT_EQ(cut.end, 1000 + static_cast<int64_t>(cut.text.size()));
  // One more sentence would not have fitted.
  const size_t next_end = long_text.find(". ", cut.text.size()) + 1;
  std::vector<ChunkHit> longer = ctx->citations;
  longer[1].text = long_text.substr(0, next_end);
  EXPECT_GT(Tokens(longer, "q") + 50, context);
  // What the model sees is exactly the citations.
  EXPECT_EQ(ctx->block, RenderRagBlock(kTemplate, ctx->citations, "q"));
  EXPECT_EQ(ctx->prompt_tokens, Tokens(ctx->citations, "q"));
  EXPECT_LE(ctx->prompt_tokens + 50, context);
}

TEST(FitPassagesTest, APassageWithNoFittingSentenceIsDroppedAndLaterOnesTried) {
  const std::string one_sentence(400, 'x');
  const ChunkHit big = Passage("big", one_sentence);
  const ChunkHit small = Passage("small", "Fits.");
  const int64_t context = Tokens({small}, "q") + 10;
  auto ctx =
      FitPassages({big, small}, "q", kTemplate, Budget(context, 10, "q"));
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  ASSERT_EQ(ctx->citations.size(), 1u);
  EXPECT_EQ(ctx->citations[0].document_id, "small");
  EXPECT_EQ(ctx->dropped, 1);
  EXPECT_NE(ctx->block.find("[1] Tsmall"), std::string::npos);
  EXPECT_EQ(ctx->block.find("xxxx"), std::string::npos);
}

TEST(FitPassagesTest, ChineseIsCutAtChineseSentenceEnds) {
  std::string zh;
  for (int i = 0; i < 12; ++i)
    zh += "大熊猫生活在中国的山区里。它们主要吃竹子！";
  const ChunkHit p = Passage("zh", zh, 0);
  const int64_t context =
      Tokens({Passage("zh", zh.substr(0, 60 * 3))}, "熊猫吃什么") + 20;
  auto ctx = FitPassages({p}, "熊猫吃什么", kTemplate,
                         Budget(context, 20, "熊猫吃什么"));
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  ASSERT_EQ(ctx->citations.size(), 1u);
  const std::string& shown = ctx->citations[0].text;
  EXPECT_EQ(IncompleteUtf8Suffix(shown), 0u);
  for (uint32_t cp : DecodeUtf8(shown)) EXPECT_NE(cp, 0xFFFDu);
  const std::string tail = shown.substr(shown.size() - 3);
  EXPECT_TRUE(tail == "。" || tail == "！") << shown;
  EXPECT_EQ(zh.rfind(shown, 0), 0u);
  EXPECT_EQ(ctx->citations[0].end, static_cast<int64_t>(shown.size()));
  EXPECT_LE(ctx->prompt_tokens + 20, context);
}

TEST(FitPassagesTest, OnlyAQuestionThatCannotFitAloneIsAnError) {
  const std::string question(300, 'q');
  EXPECT_THAT(FitPassages({Passage("a", "Text.")}, question, kTemplate,
                          Budget(200, 10, question)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("max_tokens 10"),
                                        HasSubstr("context of 200"))));
  // The question fits, the passage does not: no passage, no error.
  const int64_t alone = Tokens({}, "short?");
  auto ctx = FitPassages({Passage("a", std::string(500, 'p'))}, "short?",
                         kTemplate, Budget(alone + 5, 5, "short?"));
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_TRUE(ctx->citations.empty());
  EXPECT_EQ(ctx->dropped, 1);
  EXPECT_THAT(
      FitPassages({}, "q", "no placeholder", Budget(100, 1, "q")),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("{passages}")));
}

// Every context size from "question only" to "everything": the prompt plus
// max_tokens always fits, citations keep rank order, every citation is a
// whole-sentence prefix of its passage, and the budget is used greedily (a
// passage dropped or cut could not have been taken longer).
TEST(FitPassagesTest, TheBudgetHoldsForEveryContextSize) {
  std::vector<ChunkHit> ranked;
  for (int p = 0; p < 5; ++p) {
    std::string text;
    for (int s = 0; s <= p * 2; ++s)
      text += "Passage " + std::to_string(p) + " sentence " +
              std::to_string(s) + ". ";
    ranked.push_back(Passage("d" + std::to_string(p), text, p * 1000));
  }
  const int64_t lo = Tokens({}, "q"), hi = Tokens(ranked, "q");
  for (int64_t context = lo + 7; context <= hi + 7; context += 3) {
    auto ctx = FitPassages(ranked, "q", kTemplate, Budget(context, 7, "q"));
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    EXPECT_LE(ctx->prompt_tokens + 7, context);
    EXPECT_EQ(ctx->prompt_tokens, Tokens(ctx->citations, "q"));
    size_t next = 0;
    for (const ChunkHit& c : ctx->citations) {
      while (next < ranked.size() && ranked[next].document_id != c.document_id)
        ++next;
      ASSERT_LT(next, ranked.size()) << "citations out of rank order";
      const std::string& full = ranked[next].text;
      EXPECT_EQ(full.rfind(c.text, 0), 0u);
      EXPECT_TRUE(c.text == full || c.text.back() == '.') << c.text;
      EXPECT_EQ(c.end - c.start, static_cast<int64_t>(c.text.size()));
      ++next;
    }
    EXPECT_EQ(ctx->citations.size() + ctx->dropped, ranked.size());
  }
}

class RagRetrieverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = KnowledgeStore::Open(lumen::testing::MakeTempDir(), &embedder_,
                                  ChunkerOptions{40, 8});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->CreateCollection("mine", "acme", {}, {}).ok());
    ASSERT_TRUE(
        store_->CreateCollection("shared", "globex", {"acme"}, {}).ok());
    ASSERT_TRUE(store_->CreateCollection("secret", "globex", {}, {}).ok());
    ASSERT_TRUE(
        store_->Upsert("mine", {{"m", "", "", "", "Pandas eat bamboo."}}).ok());
    ASSERT_TRUE(
        store_->Upsert("shared", {{"s", "", "", "", "Bamboo grows very fast."}})
            .ok());
    ASSERT_TRUE(
        store_->Upsert("secret", {{"x", "", "", "", "Secret bamboo plans."}})
            .ok());
  }
  RagRequest Request(std::vector<std::string> collections) {
    RagRequest r;
    r.collections = std::move(collections);
    r.search.query = "bamboo";
    r.search.top_k = 5;
    return r;
  }
  lumen::testing::HashingEmbedder embedder_;
  std::unique_ptr<KnowledgeStore> store_;
};

TEST_F(RagRetrieverTest, SearchesReadableCollectionsAndMergesByScore) {
  RagRetriever rag(store_.get());
  const Principal acme{"acme", false};
  auto hits = rag.Retrieve(acme, Request({"mine", "shared", "mine"}));
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_GE((*hits)[0].score, (*hits)[1].score);
  std::set<std::string> collections;
  for (const ChunkHit& h : *hits) collections.insert(h.collection);
  EXPECT_EQ(collections, (std::set<std::string>{"mine", "shared"}));
  RagRequest one = Request({"mine", "shared"});
  one.search.top_k = 1;
  EXPECT_EQ(rag.Retrieve(acme, one)->size(), 1u);
}

TEST_F(RagRetrieverTest, ForbiddenAndMissingCollectionsLookTheSameToTenants) {
  RagRetriever rag(store_.get());
  const Principal acme{"acme", false};
  auto secret = rag.Retrieve(acme, Request({"mine", "secret"}));
  auto missing = rag.Retrieve(acme, Request({"mine", "nope"}));
  EXPECT_THAT(secret, StatusIs(absl::StatusCode::kPermissionDenied,
                               HasSubstr("'secret'")));
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kPermissionDenied,
                                HasSubstr("'nope'")));
  const Principal admin{"ops", true};
  EXPECT_TRUE(rag.Retrieve(admin, Request({"secret"})).ok());
  EXPECT_THAT(rag.Retrieve(admin, Request({"nope"})),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'nope'")));
  EXPECT_THAT(rag.Retrieve(acme, Request({})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
}

TEST_F(RagRetrieverTest, BuildFitsTheRetrievedPassages) {
  RagRetriever rag(store_.get());
  RagRequest r = Request({"mine", "shared"});
  r.prompt_template = kTemplate;
  const int64_t context = Tokens({}, "bamboo") + 3 + 40;
  auto ctx = rag.Build({"acme", false}, r, Budget(context, 3, "bamboo"));
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  ASSERT_EQ(ctx->citations.size(), 1u) << ctx->block;  // room for one
  EXPECT_EQ(ctx->dropped, 1);
  EXPECT_NE(ctx->block.find(ctx->citations[0].text), std::string::npos);
  EXPECT_GE(ctx->retrieval_seconds, 0.0);
}

TEST(AccessTest, OwnersSharedTenantsAndAdmins) {
  CollectionInfo c;
  c.owner = "acme";
  c.shared_with = {"globex"};
  const Principal owner{"acme", false}, reader{"globex", false},
      stranger{"initech", false}, admin{"ops", true};
  EXPECT_TRUE(CanRead(owner, c) && CanWrite(owner, c));
  EXPECT_TRUE(CanRead(reader, c));
  EXPECT_FALSE(CanWrite(reader, c));
  EXPECT_FALSE(CanRead(stranger, c) || CanWrite(stranger, c));
  EXPECT_TRUE(CanRead(admin, c) && CanWrite(admin, c));
  EXPECT_THAT(Forbidden("x"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("'x'")));
}

}  // namespace
}  // namespace lumen::retrieval
