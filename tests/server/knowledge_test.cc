// The knowledge store through lumend: tenant isolation, RAG generation with
// citations, and durability of acknowledged documents across kill -9.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "lumen/v1/knowledge.grpc.pb.h"
#include "tests/server/daemon_process.h"
#include "tests/test_support.h"
#include "tools/synth/synth_model.h"

namespace lumen {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;

std::string Stories() {
  return testing::TestDataPath("models/stories260K.gguf");
}

class Client {
 public:
  Client(std::shared_ptr<grpc::Channel> ch, std::string key)
      : kn_(v1::Knowledge::NewStub(ch)),
        inf_(v1::Inference::NewStub(ch)),
        key_(std::move(key)) {}

  void Auth(grpc::ClientContext* ctx) const {
    if (!key_.empty()) ctx->AddMetadata("authorization", "Bearer " + key_);
  }
  grpc::Status Create(const std::string& name,
                      std::vector<std::string> shared = {},
                      const std::string& owner = "") {
    grpc::ClientContext ctx;
    Auth(&ctx);
    v1::CreateCollectionRequest req;
    req.set_name(name);
    req.set_owner(owner);
    for (auto& s : shared) req.add_shared_with(s);
    v1::CollectionInfo info;
    return kn_->CreateCollection(&ctx, req, &info);
  }
  grpc::Status Upsert(const std::string& collection, const std::string& id,
                      const std::string& text,
                      const std::string& metadata = "") {
    grpc::ClientContext ctx;
    Auth(&ctx);
    v1::UpsertDocumentsRequest req;
    req.set_collection(collection);
    auto* d = req.add_documents();
    d->set_id(id);
    d->set_text(text);
    d->set_title(id);
    d->set_metadata_json(metadata);
    v1::UpsertDocumentsResponse resp;
    return kn_->UpsertDocuments(&ctx, req, &resp);
  }
  grpc::Status Search(const std::string& collection, const std::string& query,
                      v1::SearchResponse* resp,
                      std::map<std::string, std::string> filter = {}) {
    grpc::ClientContext ctx;
    Auth(&ctx);
    v1::SearchRequest req;
    req.set_collection(collection);
    req.set_query(query);
    req.set_top_k(10);
    for (auto& [k, v] : filter) (*req.mutable_filter())[k] = v;
    return kn_->Search(&ctx, req, resp);
  }
  std::vector<std::string> List() {
    grpc::ClientContext ctx;
    Auth(&ctx);
    v1::ListCollectionsResponse resp;
    EXPECT_TRUE(
        kn_->ListCollections(&ctx, v1::ListCollectionsRequest(), &resp).ok());
    std::vector<std::string> names;
    for (const auto& c : resp.collections()) names.push_back(c.name());
    return names;
  }
  grpc::Status RagGenerate(const std::vector<std::string>& collections,
                           const std::string& prompt,
                           v1::GenerateResponse* resp,
                           std::map<std::string, std::string> filter = {}) {
    grpc::ClientContext ctx;
    Auth(&ctx);
    v1::GenerateRequest req;
    req.set_prompt(prompt);
    req.mutable_sampling()->set_max_tokens(8);
    req.mutable_sampling()->set_temperature(0);
    for (const auto& c : collections) req.mutable_rag()->add_collections(c);
    for (auto& [k, v] : filter) (*req.mutable_rag()->mutable_filter())[k] = v;
    return inf_->Generate(&ctx, req, resp);
  }
  v1::Inference::Stub* inference() { return inf_.get(); }

 private:
  std::unique_ptr<v1::Knowledge::Stub> kn_;
  std::unique_ptr<v1::Inference::Stub> inf_;
  std::string key_;
};

std::string WriteKeys() {
  const std::string path = testing::MakeTempDir() + "/keys.txt";
  std::ofstream out(path);
  out << "# key tenant role\nakey acme user\nbkey beta user\nadmkey ops "
         "admin\n";
  return path;
}

TEST(KnowledgeTest, TenantsNeverSeeEachOthersPassages) {
  DaemonProcess d({"--model=" + Stories(), "--kv-cache-mb=64",
                   "--api-keys=" + WriteKeys()});
  ASSERT_TRUE(d.ok()) << d.Log();
  Client a(d.Channel(), "akey"), b(d.Channel(), "bkey"),
      admin(d.Channel(), "admkey");
  Client nokey(d.Channel(), ""), badkey(d.Channel(), "nope");

  ASSERT_TRUE(a.Create("a-secret").ok());
  ASSERT_TRUE(a.Upsert("a-secret", "plan",
                       "The zebracorn launch code is hidden in the barn.",
                       R"({"level":"secret"})")
                  .ok());
  ASSERT_TRUE(a.Create("a-shared", {"beta"}).ok());
  ASSERT_TRUE(
      a.Upsert("a-shared", "memo", "The zebracorn picnic is on Friday.").ok());
  ASSERT_TRUE(b.Create("b-docs").ok());
  ASSERT_TRUE(b.Upsert("b-docs", "notes",
                       "Beta's zebracorn notes talk about the weather.")
                  .ok());

  // Listing: own and shared only.
  EXPECT_EQ(b.List(), (std::vector<std::string>{"a-shared", "b-docs"}));
  EXPECT_EQ(a.List(), (std::vector<std::string>{"a-secret", "a-shared"}));

  // Search and RAG on a forbidden collection: PERMISSION_DENIED, and the
  // same answer as for a collection that does not exist.
  v1::SearchResponse sr;
  grpc::Status forbidden = b.Search("a-secret", "zebracorn", &sr);
  grpc::Status missing = b.Search("no-such-collection", "zebracorn", &sr);
  EXPECT_EQ(forbidden.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(forbidden.error_message(),
            "permission denied for collection 'a-secret'");
  EXPECT_EQ(missing.error_message(),
            "permission denied for collection 'no-such-collection'");
  v1::GenerateResponse gr;
  EXPECT_EQ(b.RagGenerate({"a-secret"}, "zebracorn?", &gr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(
      b.RagGenerate({"b-docs", "a-secret"}, "zebracorn?", &gr).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  // Whatever filter or allowed collection B uses, A's secret never appears.
  for (auto filter : std::vector<std::map<std::string, std::string>>{
           {}, {{"level", "secret"}}}) {
    for (const char* c : {"b-docs", "a-shared"}) {
      v1::SearchResponse hits;
      ASSERT_TRUE(
          b.Search(c, "zebracorn launch code barn", &hits, filter).ok());
      for (const auto& h : hits.hits()) EXPECT_NE(h.document_id(), "plan");
      v1::GenerateResponse rag;
      ASSERT_TRUE(
          b.RagGenerate({c}, "zebracorn launch code", &rag, filter).ok());
      for (const auto& cit : rag.citations()) {
        EXPECT_NE(cit.document_id(), "plan");
        EXPECT_EQ(cit.text().find("launch code"), std::string::npos);
      }
    }
  }
  // Shared collections are read-only for the tenant they are shared with.
  EXPECT_EQ(b.Upsert("a-shared", "x", "overwrite attempt").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Only admins create collections for other tenants.
  EXPECT_EQ(b.Create("for-acme", {}, "acme").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(admin.Create("for-acme", {}, "acme").ok());
  EXPECT_EQ(a.List().size(), 3u);
  // Keys.
  EXPECT_EQ(nokey.Search("a-secret", "x", &sr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(badkey.Search("a-secret", "x", &sr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(badkey.RagGenerate({}, "hi", &gr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST(KnowledgeTest, RagGenerateCarriesCitationsAndPutsPassagesInThePrompt) {
  DaemonProcess d({"--model=" + Stories(), "--kv-cache-mb=64"});
  ASSERT_TRUE(d.ok()) << d.Log();
  Client c(d.Channel(), "");
  ASSERT_TRUE(c.Create("stories").ok());
  ASSERT_TRUE(c.Upsert("stories", "lily",
                       "Lily has a red ball. She plays with it in the park.",
                       R"({"kind":"story"})")
                  .ok());
  ASSERT_TRUE(c.Upsert("stories", "tom",
                       "Tom likes big trucks. He drives them in the sand.")
                  .ok());

  grpc::ClientContext plain_ctx;
  v1::GenerateRequest plain;
  plain.set_prompt("What does Lily play with?");
  plain.mutable_sampling()->set_max_tokens(8);
  v1::GenerateResponse plain_resp;
  ASSERT_TRUE(c.inference()->Generate(&plain_ctx, plain, &plain_resp).ok());

  v1::GenerateResponse rag;
  ASSERT_TRUE(
      c.RagGenerate({"stories"}, "What does Lily play with?", &rag).ok());
  ASSERT_GE(rag.citations_size(), 1);
  EXPECT_EQ(rag.citations(0).document_id(), "lily");
  EXPECT_EQ(rag.citations(0).collection(), "stories");
  EXPECT_THAT(rag.citations(0).text(), HasSubstr("red ball"));
  EXPECT_EQ(rag.citations(0).metadata_json(), R"({"kind":"story"})");
  // The passages were part of the prompt.
  EXPECT_GT(rag.usage().prompt_tokens(),
            plain_resp.usage().prompt_tokens() + 10);
  EXPECT_GT(rag.timings().retrieval_seconds(), 0);

  // Streaming: the citations come first, before any token.
  grpc::ClientContext ctx;
  v1::GenerateRequest req;
  req.set_prompt("What does Lily play with?");
  req.mutable_sampling()->set_max_tokens(8);
  req.mutable_rag()->add_collections("stories");
  auto reader = c.inference()->GenerateStream(&ctx, req);
  v1::GenerateStreamResponse first, msg, last;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_GE(first.citations_size(), 1);
  EXPECT_TRUE(first.text().empty());
  while (reader->Read(&msg)) {
    if (!msg.finish_reason().empty()) last = msg;
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.citations_size(), first.citations_size());
}

TEST(KnowledgeTest, AcknowledgedDocumentsSurviveKillNine) {
  const std::string data = testing::MakeTempDir();
  std::mt19937 rng(17);
  int next = 0;
  std::vector<int> acknowledged;
  for (int round = 0; round < 3; ++round) {
    DaemonProcess d(
        {"--model=" + Stories(), "--kv-cache-mb=64", "--data-dir=" + data});
    ASSERT_TRUE(d.ok()) << d.Log();
    Client c(d.Channel(), "");
    if (round == 0) {
      ASSERT_TRUE(c.Create("durable").ok());
    }
    // Everything acknowledged so far is there with its full text.
    for (int i : acknowledged) {
      for (const char* part : {"head", "tail"}) {
        v1::SearchResponse hits;
        ASSERT_TRUE(
            c.Search("durable", absl::StrCat(part, i, "x"), &hits).ok());
        bool found = false;
        for (const auto& h : hits.hits())
          found |= h.document_id() == absl::StrCat("doc", i);
        EXPECT_TRUE(found) << "round " << round << ": doc" << i << " lost its "
                           << part;
      }
    }
    // Ingest until killed at a random moment after this round's second
    // acknowledgement (waited for, however slow the machine).
    std::atomic<bool> stop{false};
    std::atomic<int> acknowledged_this_round{0};
    std::thread writer([&] {
      while (!stop) {
        const int i = next++;
        std::string text = absl::StrCat("head", i, "x starts this document. ");
        for (int s = 0; s < 20; ++s)
          text += "A middle sentence carries more words along. ";
        text += absl::StrCat("It ends with tail", i, "x.");
        if (c.Upsert("durable", absl::StrCat("doc", i), text).ok()) {
          acknowledged.push_back(i);
          ++acknowledged_this_round;
        } else {
          break;
        }
      }
    });
    for (int i = 0; i < 6000 && acknowledged_this_round < 2; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GE(acknowledged_this_round, 2) << "round " << round;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
    d.Signal(SIGKILL);
    d.Wait();
    stop = true;
    writer.join();
  }
  DaemonProcess d(
      {"--model=" + Stories(), "--kv-cache-mb=64", "--data-dir=" + data});
  ASSERT_TRUE(d.ok()) << d.Log();
  Client c(d.Channel(), "");
  EXPECT_GT(acknowledged.size(), 5u);
  // No partial document: a document's head exists exactly when its tail does.
  for (int i = 0; i < next; ++i) {
    bool head = false, tail = false;
    for (const char* part : {"head", "tail"}) {
      v1::SearchResponse hits;
      ASSERT_TRUE(c.Search("durable", absl::StrCat(part, i, "x"), &hits).ok());
      for (const auto& h : hits.hits()) {
        if (h.document_id() == absl::StrCat("doc", i))
          (part[0] == 'h' ? head : tail) = true;
      }
    }
    EXPECT_EQ(head, tail) << "doc" << i << " is partial";
    if (std::find(acknowledged.begin(), acknowledged.end(), i) !=
        acknowledged.end()) {
      EXPECT_TRUE(head && tail) << "acknowledged doc" << i << " is missing";
    }
  }
}

}  // namespace
}  // namespace lumen

namespace lumen {
namespace {

TEST(KnowledgeTest, EmbeddingModelEnablesVectorSearchAndEmbed) {
  tools::SynthOptions o;
  o.arch = "bert";
  o.dim = 64;
  o.layers = 2;
  o.heads = 4;
  o.kv_heads = 4;
  o.ffn = 128;
  o.ctx = 128;
  o.vocab_from = testing::TestDataPath("vocab/ggml-vocab-bert-bge.gguf");
  const std::string bert = testing::MakeTempDir() + "/bert.gguf";
  ASSERT_TRUE(tools::Synthesize(o, bert).ok());
  DaemonProcess d({"--model=" + Stories(), "--kv-cache-mb=64",
                   "--embedding-model=" + bert});
  ASSERT_TRUE(d.ok()) << d.Log();
  EXPECT_THAT(d.Log(),
              HasSubstr("vector + keyword search, embeddings of 64 dims"));
  auto inf = v1::Inference::NewStub(d.Channel());
  grpc::ClientContext ectx;
  v1::EmbedRequest er;
  er.add_texts("hello world");
  er.add_texts("你好世界");
  v1::EmbedResponse eresp;
  ASSERT_TRUE(inf->Embed(&ectx, er, &eresp).ok());
  ASSERT_EQ(eresp.embeddings_size(), 2);
  EXPECT_EQ(eresp.dim(), 64u);
  double norm = 0;
  for (float v : eresp.embeddings(0).values()) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-4);

  Client c(d.Channel(), "");
  ASSERT_TRUE(c.Create("vec").ok());
  const std::string text = "Volcanoes erupt molten lava and ash into the sky.";
  ASSERT_TRUE(c.Upsert("vec", "volcano", text).ok());
  ASSERT_TRUE(
      c.Upsert("vec", "garden", "Tulips bloom in the spring garden.").ok());
  // The exact passage as query: its own embedding is the nearest neighbour.
  grpc::ClientContext sctx;
  auto kn = v1::Knowledge::NewStub(d.Channel());
  v1::SearchRequest sr;
  sr.set_collection("vec");
  sr.set_query(text);
  sr.set_top_k(1);
  sr.set_mode(v1::SEARCH_MODE_VECTOR);
  v1::SearchResponse hits;
  ASSERT_TRUE(kn->Search(&sctx, sr, &hits).ok());
  ASSERT_EQ(hits.hits_size(), 1);
  EXPECT_EQ(hits.hits(0).document_id(), "volcano");
  EXPECT_NEAR(hits.hits(0).score(), 1.0, 1e-3);
  grpc::ClientContext lctx;
  v1::ListCollectionsResponse list;
  ASSERT_TRUE(
      kn->ListCollections(&lctx, v1::ListCollectionsRequest(), &list).ok());
  EXPECT_TRUE(list.embedding_model());
  EXPECT_TRUE(list.collections(0).vector_search());
}

}  // namespace
}  // namespace lumen
