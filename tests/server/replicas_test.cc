// Several lumend replicas sharing one knowledge store on a real PostgreSQL 15
// (tests/pg_server.h): a write through one replica is searchable (and used
// by RAG) on another within a second; kill -9 during ingestion loses no
// acknowledged document; a restarted replica catches up on writes it
// missed; and while PostgreSQL is down the replicas answer UNAVAILABLE,
// then recover by themselves when it is back.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "lumen/v1/knowledge.grpc.pb.h"
#include "tests/pg_server.h"
#include "tests/server/daemon_process.h"
#include "tests/test_support.h"
#include "tools/synth/synth_model.h"

namespace lumen {
namespace {

using Clock = std::chrono::steady_clock;
using testing::DaemonProcess;
using testing::PgServer;

std::string Stories() {
  return testing::TestDataPath("models/stories260K.gguf");
}

std::string Bert() {
  tools::SynthOptions o;
  o.arch = "bert";
  o.dim = 64;
  o.layers = 2;
  o.heads = 4;
  o.kv_heads = 4;
  o.ffn = 128;
  o.ctx = 128;
  o.vocab_from = testing::TestDataPath("vocab/ggml-vocab-bert-bge.gguf");
  const std::string path = testing::MakeTempDir() + "/bert.gguf";
  EXPECT_TRUE(tools::Synthesize(o, path).ok());
  return path;
}

// One lumend on the shared store, with its own index cache.
std::unique_ptr<DaemonProcess> Replica(const std::string& uri,
                                       const std::string& bert,
                                       std::string data_dir = "") {
  if (data_dir.empty()) data_dir = testing::MakeTempDir();
  return std::make_unique<DaemonProcess>(std::vector<std::string>{
      "--model=" + Stories(), "--kv-cache-mb=64", "--knowledge-store=" + uri,
      "--data-dir=" + data_dir, "--embedding-model=" + bert});
}

class Client {
 public:
  explicit Client(const DaemonProcess& d)
      : kn_(v1::Knowledge::NewStub(d.Channel())),
        inf_(v1::Inference::NewStub(d.Channel())) {}
  grpc::Status Create(const std::string& name) {
    grpc::ClientContext ctx;
    v1::CreateCollectionRequest req;
    req.set_name(name);
    v1::CollectionInfo info;
    return kn_->CreateCollection(&ctx, req, &info);
  }
  grpc::Status Upsert(const std::string& id, const std::string& text) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    v1::UpsertDocumentsRequest req;
    req.set_collection("kb");
    auto* d = req.add_documents();
    d->set_id(id);
    d->set_title(id);
    d->set_text(text);
    v1::UpsertDocumentsResponse resp;
    return kn_->UpsertDocuments(&ctx, req, &resp);
  }
  // The ids of the top hits (or the error).
  grpc::Status Search(const std::string& query, v1::SearchMode mode,
                      std::vector<std::string>* ids) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    v1::SearchRequest req;
    req.set_collection("kb");
    req.set_query(query);
    req.set_mode(mode);
    req.set_top_k(3);
    v1::SearchResponse resp;
    grpc::Status s = kn_->Search(&ctx, req, &resp);
    ids->clear();
    for (const auto& h : resp.hits()) ids->push_back(h.document_id());
    return s;
  }
  bool Finds(const std::string& query, const std::string& id,
             v1::SearchMode mode = v1::SEARCH_MODE_VECTOR) {
    std::vector<std::string> ids;
    return Search(query, mode, &ids).ok() && !ids.empty() && ids[0] == id;
  }
  grpc::Status Rag(const std::string& question, v1::GenerateResponse* resp) {
    grpc::ClientContext ctx;
    v1::GenerateRequest req;
    req.set_prompt(question);
    req.mutable_sampling()->set_max_tokens(4);
    req.mutable_sampling()->set_temperature(0);
    req.mutable_rag()->add_collections("kb");
    req.mutable_rag()->set_top_k(1);
    return inf_->Generate(&ctx, req, resp);
  }
  int64_t Documents() {
    grpc::ClientContext ctx;
    v1::ListCollectionsResponse resp;
    if (!kn_->ListCollections(&ctx, v1::ListCollectionsRequest(), &resp).ok())
      return -1;
    for (const auto& c : resp.collections()) {
      if (c.name() == "kb") return static_cast<int64_t>(c.documents());
    }
    return -1;
  }

 private:
  std::unique_ptr<v1::Knowledge::Stub> kn_;
  std::unique_ptr<v1::Inference::Stub> inf_;
};

// Polls `done` until it holds or `timeout` passes (a bounded wait for
// another process, as DaemonProcess does for start-up); returns how long it
// took, or nullopt.
template <typename F>
std::optional<double> WaitFor(F done, std::chrono::milliseconds timeout) {
  const auto t0 = Clock::now();
  for (;;) {  // `done` is asked at least once, even with no time left
    if (done()) return std::chrono::duration<double>(Clock::now() - t0).count();
    if (Clock::now() - t0 >= timeout) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = PgServer::Start();
    if (!pg.ok()) GTEST_SKIP() << "no PostgreSQL: " << pg.status();
    pg_ = std::move(*pg);
    auto db = pg_->CreateDatabase();
    ASSERT_TRUE(db.ok()) << db.status();
    uri_ = pg_->Uri(*db);
    bert_ = Bert();
  }
  std::unique_ptr<PgServer> pg_;
  std::string uri_, bert_;
};

TEST_F(ReplicasTest, IngestThroughOneSearchAndRagThroughTheOther) {
  auto a = Replica(uri_, bert_), b = Replica(uri_, bert_);
  ASSERT_TRUE(a->ok()) << a->Log();
  ASSERT_TRUE(b->ok()) << b->Log();
  EXPECT_NE(a->Log().find("postgresql://lumen@127.0.0.1"), std::string::npos)
      << a->Log();
  Client ca(*a), cb(*b);
  ASSERT_TRUE(ca.Create("kb").ok());
  for (int i = 0; i < 5; ++i) {
    const std::string id = absl::StrCat("doc", i);
    ASSERT_TRUE(
        ca.Upsert(id, absl::StrCat("Quokka", i, " lives on an island.")).ok());
    // Bounded far above the lag (printed), which load on the machine
    // moves, and below the listener's 30 s poll: NOTIFY must do it.
    const auto seen =
        WaitFor([&] { return cb.Finds(absl::StrCat("Quokka", i), id); },
                std::chrono::milliseconds(20000));
    ASSERT_TRUE(seen.has_value()) << id << " not searchable on B within 20 s";
    std::printf("%s searchable on B after %.3f s\n", id.c_str(), *seen);
    EXPECT_TRUE(
        cb.Finds(absl::StrCat("quokka", i), id, v1::SEARCH_MODE_KEYWORD));
  }
  v1::GenerateResponse rag;
  ASSERT_TRUE(cb.Rag("Where does Quokka3 live?", &rag).ok());
  ASSERT_EQ(rag.citations_size(), 1);
  EXPECT_EQ(rag.citations(0).document_id(), "doc3");
  // Collections created on A are listed on B, with the same counts.
  EXPECT_EQ(cb.Documents(), 5);
}

TEST_F(ReplicasTest, KillNineDuringIngestionLosesNoAcknowledgedDocument) {
  auto a = Replica(uri_, bert_), b = Replica(uri_, bert_);
  ASSERT_TRUE(a->ok() && b->ok()) << a->Log() << b->Log();
  Client ca(*a), cb(*b);
  ASSERT_TRUE(ca.Create("kb").ok());
  std::vector<int> acknowledged;  // the writer's until it is joined
  std::atomic<int> num_acknowledged{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      std::string text = absl::StrCat("head", i, "x starts this document. ");
      for (int s = 0; s < 10; ++s) text += "A middle sentence goes on. ";
      text += absl::StrCat("It ends with tail", i, "x.");
      if (!ca.Upsert(absl::StrCat("doc", i), text).ok()) break;
      acknowledged.push_back(i);
      ++num_acknowledged;
    }
  });
  // A few acknowledged (however slow the machine), then a kill at a random
  // point of the ingestion.
  const bool started = WaitFor([&] { return num_acknowledged >= 4; },
                               std::chrono::milliseconds(60000))
                           .has_value();
  std::mt19937 rng(std::random_device{}());
  std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));
  a->Signal(SIGKILL);
  a->Wait();
  stop = true;
  writer.join();
  ASSERT_TRUE(started) << "fewer than 4 upserts acknowledged in 60 s";
  ASSERT_GT(acknowledged.size(), 3u);
  // Every acknowledged document, whole, on the surviving replica. One 20 s
  // deadline for all of them: lost documents fail the test, not its timeout.
  EXPECT_GE(cb.Documents(), static_cast<int64_t>(acknowledged.size()));
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (int i : acknowledged) {
    for (const char* part : {"head", "tail"}) {
      const std::string q = absl::StrCat(part, i, "x");
      const auto left =
          std::max(std::chrono::milliseconds(0),
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       deadline - Clock::now()));
      EXPECT_TRUE(
          WaitFor(
              [&] {
                std::vector<std::string> ids;
                return cb.Search(q, v1::SEARCH_MODE_KEYWORD, &ids).ok() &&
                       std::count(ids.begin(), ids.end(),
                                  absl::StrCat("doc", i)) > 0;
              },
              left)
              .has_value())
          << "doc" << i << " lost its " << part;
    }
  }
}

TEST_F(ReplicasTest, ARestartedReplicaCatchesUpOnWritesItMissed) {
  const std::string b_dir = testing::MakeTempDir();
  auto a = Replica(uri_, bert_);
  ASSERT_TRUE(a->ok()) << a->Log();
  Client ca(*a);
  ASSERT_TRUE(ca.Create("kb").ok());
  ASSERT_TRUE(ca.Upsert("early", "Early wombats dig.").ok());
  {
    auto b = Replica(uri_, bert_, b_dir);
    ASSERT_TRUE(b->ok()) << b->Log();
    EXPECT_TRUE(Client(*b).Finds("Early wombats", "early"));
  }  // B stops and misses these:
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(
        ca.Upsert(absl::StrCat("late", i), absl::StrCat("Numbat", i, " hunts."))
            .ok());
  }
  auto b = Replica(uri_, bert_, b_dir);
  ASSERT_TRUE(b->ok()) << b->Log();
  Client cb(*b);
  // Caught up at start: no waiting.
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(cb.Finds(absl::StrCat("Numbat", i), absl::StrCat("late", i)));
  EXPECT_TRUE(cb.Finds("Early wombats", "early"));
}

TEST_F(ReplicasTest, PostgresRestartedUnderLoadIsUnavailableThenRecovers) {
  auto a = Replica(uri_, bert_), b = Replica(uri_, bert_);
  ASSERT_TRUE(a->ok() && b->ok()) << a->Log() << b->Log();
  Client ca(*a), cb(*b);
  ASSERT_TRUE(ca.Create("kb").ok());
  ASSERT_TRUE(ca.Upsert("before", "Before the outage, ravens.").ok());
  // Load on both replicas throughout, counting what each answer was.
  std::atomic<bool> stop{false};
  std::atomic<int> ok_before{0}, unavailable{0}, other{0}, ok_after{0};
  std::atomic<bool> restarted{false};
  auto load = [&](Client* c) {
    while (!stop) {
      std::vector<std::string> ids;
      const grpc::Status s = c->Search("ravens", v1::SEARCH_MODE_HYBRID, &ids);
      if (s.ok()) {
        (restarted ? ok_after : ok_before)++;
      } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
        unavailable++;
      } else {
        other++;
        ADD_FAILURE() << s.error_code() << ": " << s.error_message();
      }
    }
  };
  std::thread la(load, &ca), lb(load, &cb);
  // Answers before the outage, however slowly the load threads start.
  EXPECT_TRUE(
      WaitFor([&] { return ok_before > 0; }, std::chrono::milliseconds(30000))
          .has_value());
  ASSERT_TRUE(pg_->Stop().ok());
  // While down: UNAVAILABLE, for writes too.
  EXPECT_TRUE(
      WaitFor([&] { return unavailable > 4; }, std::chrono::milliseconds(10000))
          .has_value());
  const grpc::Status write = ca.Upsert("during", "During the outage.");
  EXPECT_EQ(write.error_code(), grpc::StatusCode::UNAVAILABLE)
      << write.error_message();
  ASSERT_TRUE(pg_->Restart().ok());
  restarted = true;
  // Back without restarting lumend.
  EXPECT_TRUE(
      WaitFor([&] { return ok_after > 10; }, std::chrono::milliseconds(10000))
          .has_value());
  stop = true;
  la.join();
  lb.join();
  EXPECT_EQ(other, 0);
  ASSERT_TRUE(ca.Upsert("after", "After the outage, owls.").ok());
  // B follows A's writes again (its listener reconnected).
  EXPECT_TRUE(
      WaitFor([&] { return cb.Finds("After the outage, owls", "after"); },
              std::chrono::milliseconds(10000))
          .has_value());
}

}  // namespace
}  // namespace lumen
