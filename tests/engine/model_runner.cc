#include "tests/engine/model_runner.h"

#include <algorithm>

#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::testing {

using engine::BatchSequence;
using engine::KvCache;

std::unique_ptr<engine::GgufFile> OpenModel(const std::string& path) {
  auto f = engine::GgufFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? std::move(*f) : nullptr;
}

std::string SynthTinyModel(
    const std::function<void(tools::SynthOptions&)>& edit) {
  tools::SynthOptions o;
  o.dim = 64;
  o.layers = 3;
  o.heads = 4;
  o.kv_heads = 2;
  o.ffn = 96;
  o.ctx = 256;
  o.seed = 1;
  o.vocab_from = TestDataPath("vocab/ggml-vocab-llama-spm.gguf");
  if (edit) edit(o);
  const std::string path = MakeTempDir() + "/tiny.gguf";
  const absl::Status st = tools::Synthesize(o, path);
  EXPECT_TRUE(st.ok()) << st;
  return path;
}

std::unique_ptr<engine::Transformer> LoadModel(const engine::GgufFile& f,
                                               engine::WeightMode mode,
                                               int64_t max_batch_tokens,
                                               int64_t max_context) {
  engine::TransformerOptions o;
  o.weights = mode;
  o.max_batch_tokens = max_batch_tokens;
  o.max_context = max_context;
  o.measure_crossover = false;
  auto m = engine::Transformer::Load(f, o);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

Runner::Runner(engine::Transformer* model, int num_seqs, int blocks_per_seq,
               engine::KvElement element)
    : model_(model),
      tables_(num_seqs),
      positions_(num_seqs, 0),
      adapters_(num_seqs, nullptr) {
  const engine::ModelConfig& c = model->config();
  auto cache = KvCache::Create({c.n_layers, c.n_kv_heads, c.head_dim, 16,
                                int64_t{num_seqs} * blocks_per_seq, element});
  EXPECT_TRUE(cache.ok());
  cache_ = std::move(*cache);
  // Interleave block ids so sequences' blocks are not contiguous.
  for (int s = 0; s < num_seqs; ++s) {
    for (int b = 0; b < blocks_per_seq; ++b)
      tables_[s].push_back(b * num_seqs + s);
  }
}

std::vector<std::vector<float>> Runner::Step(
    const std::vector<std::pair<int, std::vector<int32_t>>>& work) {
  std::vector<int32_t> tokens;
  std::vector<BatchSequence> seqs;
  for (const auto& [s, toks] : work) {
    tokens.insert(tokens.end(), toks.begin(), toks.end());
    seqs.push_back({static_cast<int32_t>(toks.size()), positions_[s],
                    tables_[s], true, adapters_[s]});
    positions_[s] += toks.size();
  }
  const int64_t vocab = model_->config().n_vocab;
  std::vector<float> logits(seqs.size() * vocab);
  absl::Status st = model_->Forward({tokens, seqs}, cache_.get(), logits);
  EXPECT_TRUE(st.ok()) << st;
  std::vector<std::vector<float>> rows;
  for (size_t i = 0; i < seqs.size(); ++i) {
    rows.emplace_back(logits.begin() + i * vocab,
                      logits.begin() + (i + 1) * vocab);
  }
  return rows;
}

int32_t Argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::vector<int32_t> GreedyAlone(engine::Transformer* m,
                                 const std::vector<int32_t>& prompt, int steps,
                                 const engine::LoraAdapter* adapter) {
  Runner r(m, 1, 32);
  r.SetAdapter(0, adapter);
  std::vector<float> logits = r.Step({{0, prompt}})[0];
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) {
    out.push_back(Argmax(logits));
    logits = r.Step({{0, {out.back()}}})[0];
  }
  return out;
}

}  // namespace lumen::testing
