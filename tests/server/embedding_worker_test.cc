// EmbeddingWorker: concurrent callers, batched into shared encoder passes,
// each get exactly the embeddings of their own texts; the model identity.

#include "server/embedding_worker.h"

#include <future>

#include "gtest/gtest.h"
#include "tests/test_support.h"
#include "tools/synth/synth_model.h"

namespace lumen::server {
namespace {

std::string Bert(int seed) {
  tools::SynthOptions o;
  o.arch = "bert";
  o.dim = 32;
  o.layers = 2;
  o.heads = 4;
  o.kv_heads = 4;
  o.ffn = 64;
  o.ctx = 64;
  o.seed = seed;
  o.vocab_from = testing::TestDataPath("vocab/ggml-vocab-bert-bge.gguf");
  const std::string path =
      testing::MakeTempDir() + "/bert" + std::to_string(seed) + ".gguf";
  EXPECT_TRUE(tools::Synthesize(o, path).ok());
  return path;
}

TEST(EmbeddingWorkerTest, ConcurrentCallersGetTheirOwnEmbeddings) {
  auto worker = EmbeddingWorker::Load(Bert(1));
  ASSERT_TRUE(worker.ok()) << worker.status();
  // Each caller's texts, and what each text gives alone.
  std::vector<std::vector<std::string>> calls;
  for (int c = 0; c < 12; ++c) {
    std::vector<std::string> texts;
    const int n = c % 3 == 0 ? 1 : 5 + c;  // queries and ingests mixed
    for (int i = 0; i < n; ++i) {
      texts.push_back("caller " + std::to_string(c) + " text " +
                      std::to_string(i) + std::string(i * 3, 'x'));
    }
    calls.push_back(texts);
  }
  std::map<std::string, std::vector<float>> alone;
  for (const auto& texts : calls) {
    for (const std::string& t : texts) {
      auto e = (*worker)->Embed({t});
      ASSERT_TRUE(e.ok());
      alone[t] = (*e)[0];
    }
  }
  std::vector<std::future<absl::StatusOr<std::vector<std::vector<float>>>>>
      futures;
  for (const auto& texts : calls) {
    futures.push_back(std::async(
        std::launch::async, [&, texts] { return (*worker)->Embed(texts); }));
  }
  for (size_t c = 0; c < calls.size(); ++c) {
    auto got = futures[c].get();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), calls[c].size());
    for (size_t i = 0; i < got->size(); ++i) {
      const std::vector<float>& want = alone[calls[c][i]];
      ASSERT_EQ((*got)[i].size(), want.size());
      for (size_t d = 0; d < want.size(); ++d)
        ASSERT_NEAR((*got)[i][d], want[d], 2e-6)
            << "call " << c << " text " << i;
    }
  }
  EXPECT_TRUE((*worker)->Embed({})->empty());
}

TEST(EmbeddingWorkerTest, TheModelIdentityNamesTheWeights) {
  auto a = EmbeddingWorker::Load(Bert(1)), b = EmbeddingWorker::Load(Bert(2));
  ASSERT_TRUE(a.ok() && b.ok());
  const retrieval::EmbeddingModelInfo ma = (*a)->model(), mb = (*b)->model();
  EXPECT_EQ(ma.name, "lumen-synth-bert-32x2");
  EXPECT_EQ(ma.dim, 32);
  EXPECT_EQ(ma.checksum.size(), 16u);
  EXPECT_EQ(ma.name, mb.name);
  EXPECT_NE(ma.checksum, mb.checksum) << "other weights, same name";
  auto again = EmbeddingWorker::Load(Bert(1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->model(), ma);
}

}  // namespace
}  // namespace lumen::server
