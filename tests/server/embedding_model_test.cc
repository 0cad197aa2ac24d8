// The knowledge store through lumend and the lumen client: the embedding
// model recorded per collection (another model is refused until `lumen
// collection reembed`), and `lumen ingest` sending files in parallel
// requests.

#include <fstream>

#include "gtest/gtest.h"
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

std::string Bert(int seed, int dim) {
  tools::SynthOptions o;
  o.arch = "bert";
  o.dim = dim;
  o.layers = 2;
  o.heads = 4;
  o.kv_heads = 4;
  o.ffn = 2 * dim;
  o.ctx = 128;
  o.seed = seed;
  o.vocab_from = testing::TestDataPath("vocab/ggml-vocab-bert-bge.gguf");
  const std::string path =
      testing::MakeTempDir() + "/bert" + std::to_string(seed) + ".gguf";
  EXPECT_TRUE(tools::Synthesize(o, path).ok());
  return path;
}

grpc::Status VectorSearch(DaemonProcess& d, const std::string& query,
                          v1::SearchResponse* resp) {
  grpc::ClientContext ctx;
  v1::SearchRequest req;
  req.set_collection("docs");
  req.set_query(query);
  req.set_mode(v1::SEARCH_MODE_VECTOR);
  return v1::Knowledge::NewStub(d.Channel())->Search(&ctx, req, resp);
}

testing::CommandResult Lumen(const DaemonProcess& d, const std::string& args) {
  return testing::RunCommand(testing::BinPath("lumen") + " " + args +
                             " --addr=" + d.address());
}

TEST(EmbeddingModelTest, AnotherModelIsRefusedUntilTheCollectionIsReembedded) {
  const std::string data = testing::MakeTempDir();
  const std::string model_a = Bert(1, 64), model_b = Bert(2, 32);
  const std::string docs = testing::MakeTempDir();
  for (int i = 0; i < 6; ++i) {
    std::ofstream(docs + "/d" + std::to_string(i) + ".txt")
        << "Document " << i << " talks about comets and word" << i << ".";
  }
  {
    DaemonProcess d({"--model=" + Stories(), "--kv-cache-mb=64",
                     "--data-dir=" + data, "--embedding-model=" + model_a});
    ASSERT_TRUE(d.ok()) << d.Log();
    ASSERT_EQ(Lumen(d, "collection create docs").exit_code, 0);
    auto ingest = Lumen(d, "ingest --quiet --collection docs " + docs);
    ASSERT_EQ(ingest.exit_code, 0) << ingest.err;
    v1::SearchResponse resp;
    ASSERT_TRUE(VectorSearch(d, "comets word3", &resp).ok());
  }
  DaemonProcess d({"--model=" + Stories(), "--kv-cache-mb=64",
                   "--data-dir=" + data, "--embedding-model=" + model_b});
  ASSERT_TRUE(d.ok()) << d.Log();
  v1::SearchResponse resp;
  grpc::Status refused = VectorSearch(d, "comets", &resp);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(),
              ::testing::AllOf(HasSubstr("'lumen-synth-bert-64x2' (dim 64"),
                               HasSubstr("'lumen-synth-bert-32x2' (dim 32"),
                               HasSubstr("lumen collection reembed docs")));
  auto list = Lumen(d, "collection list");
  EXPECT_THAT(list.out, HasSubstr("lumen-synth-bert-64x2"));
  auto reembed = Lumen(d, "collection reembed docs");
  ASSERT_EQ(reembed.exit_code, 0) << reembed.err;
  EXPECT_THAT(reembed.err, HasSubstr("6/6 chunks"));
  EXPECT_THAT(reembed.out, HasSubstr("re-embedded docs (6 chunks)"));
  ASSERT_TRUE(VectorSearch(d, "comets word3", &resp).ok());
  EXPECT_EQ(resp.hits_size(), 5);
  EXPECT_THAT(Lumen(d, "collection list").out,
              HasSubstr("lumen-synth-bert-32x2"));
  // A collection that does not exist: the stream ends with the error.
  auto missing = Lumen(d, "collection reembed nope");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("not found"));
}

TEST(EmbeddingModelTest, IngestSendsFilesInParallelRequests) {
  DaemonProcess d({"--model=" + Stories(), "--kv-cache-mb=64",
                   "--embedding-model=" + Bert(3, 32)});
  ASSERT_TRUE(d.ok()) << d.Log();
  const std::string docs = testing::MakeTempDir();
  for (int i = 0; i < 40; ++i) {
    std::ofstream(docs + "/f" + std::to_string(i) + ".md")
        << "File " << i << " mentions marmots and token" << i << ".";
  }
  ASSERT_EQ(Lumen(d, "collection create docs").exit_code, 0);
  auto ingest =
      Lumen(d, "ingest --parallel 4 --batch 3 --collection docs " + docs);
  ASSERT_EQ(ingest.exit_code, 0) << ingest.err;
  EXPECT_THAT(ingest.out, HasSubstr("ingested 40 documents (0 unchanged)"));
  EXPECT_THAT(ingest.err, HasSubstr("40/40 documents"));
  // Again: everything is unchanged.
  auto again =
      Lumen(d, "ingest --quiet --parallel 3 --collection docs " + docs);
  EXPECT_THAT(again.out, HasSubstr("ingested 40 documents (40 unchanged)"));
  EXPECT_THAT(Lumen(d, "collection list").out, HasSubstr("40"));
}

}  // namespace
}  // namespace lumen
