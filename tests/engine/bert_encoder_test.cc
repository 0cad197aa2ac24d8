// BertEncoder against a naive double-precision BERT written here.

#include "engine/model/bert_encoder.h"

#include <cmath>

#include "engine/gguf/tensor_convert.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"
#include "tools/synth/synth_model.h"

namespace lumen::engine {
namespace {

using Vec = std::vector<double>;

Vec Load(const GgufFile& f, const std::string& name) {
  const GgufTensorInfo* t = f.FindTensor(name);
  std::vector<float> tmp(t->num_elements);
  (void)DecodeToFloat(t->type, f.TensorData(*t).data(), t->num_elements,
                      tmp.data());
  return Vec(tmp.begin(), tmp.end());
}

void Norm(Vec& x, int n, int d, const Vec& w, const Vec& b) {
  for (int t = 0; t < n; ++t) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; ++i) mean += x[t * d + i];
    mean /= d;
    for (int i = 0; i < d; ++i)
      var += (x[t * d + i] - mean) * (x[t * d + i] - mean);
    var /= d;
    for (int i = 0; i < d; ++i) {
      x[t * d + i] =
          (x[t * d + i] - mean) / std::sqrt(var + 1e-12) * w[i] + b[i];
    }
  }
}

Vec Lin(const Vec& x, int n, int in, int out, const Vec& w, const Vec& b) {
  Vec y(n * out);
  for (int t = 0; t < n; ++t) {
    for (int o = 0; o < out; ++o) {
      double s = b[o];
      for (int i = 0; i < in; ++i) s += w[o * in + i] * x[t * in + i];
      y[t * out + o] = s;
    }
  }
  return y;
}

Vec ReferenceEmbedding(const GgufFile& f, const std::vector<int32_t>& toks,
                       bool mean) {
  const int d = *f.GetInt("bert.embedding_length"),
            L = *f.GetInt("bert.block_count");
  const int H = *f.GetInt("bert.attention.head_count"),
            F = *f.GetInt("bert.feed_forward_length");
  const int n = toks.size(), hd = d / H;
  Vec te = Load(f, "token_embd.weight"), pe = Load(f, "position_embd.weight"),
      ty = Load(f, "token_types.weight");
  Vec x(n * d);
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < d; ++i)
      x[t * d + i] = te[toks[t] * d + i] + pe[t * d + i] + ty[i];
  }
  Norm(x, n, d, Load(f, "token_embd_norm.weight"),
       Load(f, "token_embd_norm.bias"));
  for (int l = 0; l < L; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    Vec q = Lin(x, n, d, d, Load(f, p + "attn_q.weight"),
                Load(f, p + "attn_q.bias"));
    Vec k = Lin(x, n, d, d, Load(f, p + "attn_k.weight"),
                Load(f, p + "attn_k.bias"));
    Vec v = Lin(x, n, d, d, Load(f, p + "attn_v.weight"),
                Load(f, p + "attn_v.bias"));
    Vec a(n * d, 0.0);
    for (int t = 0; t < n; ++t) {
      for (int h = 0; h < H; ++h) {
        Vec s(n);
        double mx = -1e300, sum = 0;
        for (int u = 0; u < n; ++u) {
          double dot = 0;
          for (int i = 0; i < hd; ++i)
            dot += q[t * d + h * hd + i] * k[u * d + h * hd + i];
          s[u] = dot / std::sqrt(double(hd));
          mx = std::max(mx, s[u]);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int u = 0; u < n; ++u) {
          for (int i = 0; i < hd; ++i)
            a[t * d + h * hd + i] += s[u] / sum * v[u * d + h * hd + i];
        }
      }
    }
    Vec o = Lin(a, n, d, d, Load(f, p + "attn_output.weight"),
                Load(f, p + "attn_output.bias"));
    for (int i = 0; i < n * d; ++i) x[i] += o[i];
    Norm(x, n, d, Load(f, p + "attn_output_norm.weight"),
         Load(f, p + "attn_output_norm.bias"));
    Vec u = Lin(x, n, d, F, Load(f, p + "ffn_up.weight"),
                Load(f, p + "ffn_up.bias"));
    for (double& e : u) e = 0.5 * e * (1 + std::erf(e / std::sqrt(2.0)));
    Vec dn = Lin(u, n, F, d, Load(f, p + "ffn_down.weight"),
                 Load(f, p + "ffn_down.bias"));
    for (int i = 0; i < n * d; ++i) x[i] += dn[i];
    Norm(x, n, d, Load(f, p + "layer_output_norm.weight"),
         Load(f, p + "layer_output_norm.bias"));
  }
  Vec e(d, 0.0);
  for (int t = 0; t < (mean ? n : 1); ++t) {
    for (int i = 0; i < d; ++i) e[i] += x[t * d + i];
  }
  double ss = 0;
  for (double v : e) ss += v * v;
  for (double& v : e) v /= std::sqrt(ss);
  return e;
}

class BertEncoderTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BertEncoderTest, MatchesNaiveReference) {
  tools::SynthOptions o;
  o.arch = "bert";
  o.dim = 64;
  o.layers = 2;
  o.heads = 4;
  o.kv_heads = 4;
  o.ffn = 96;
  o.ctx = 64;
  o.seed = 9;
  o.pooling = GetParam();
  o.vocab_from = testing::TestDataPath("vocab/ggml-vocab-bert-bge.gguf");
  const std::string path = testing::MakeTempDir() + "/bert.gguf";
  ASSERT_TRUE(tools::Synthesize(o, path).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok());
  auto enc = BertEncoder::Load(**f);
  ASSERT_TRUE(enc.ok()) << enc.status();
  auto tok = Tokenizer::FromGguf(**f);
  ASSERT_TRUE(tok.ok());
  std::vector<std::vector<int32_t>> seqs = {
      (*tok)->Encode("Pandas eat bamboo in the mountains.", true, false),
      (*tok)->Encode("熊猫吃竹子", true, false),
      (*tok)->Encode("a", true, false)};
  auto got = (*enc)->Embed(seqs);
  ASSERT_TRUE(got.ok()) << got.status();
  for (size_t s = 0; s < seqs.size(); ++s) {
    const Vec want = ReferenceEmbedding(**f, seqs[s], GetParam() == "mean");
    double max_diff = 0, norm = 0;
    for (int i = 0; i < 64; ++i) {
      max_diff = std::max(max_diff, std::fabs(want[i] - (*got)[s][i]));
      norm += (*got)[s][i] * (*got)[s][i];
    }
    EXPECT_LT(max_diff, 1e-4) << "sequence " << s;
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
}

// A ragged batch (one pass, or several when the pass budget is small) gives
// each sequence the embedding it gets alone.
TEST_P(BertEncoderTest, BatchesEqualSequencesAlone) {
  tools::SynthOptions o;
  o.arch = "bert";
  o.dim = 64;
  o.layers = 2;
  o.heads = 4;
  o.kv_heads = 4;
  o.ffn = 96;
  o.ctx = 64;
  o.seed = 11;
  o.pooling = GetParam();
  o.vocab_from = testing::TestDataPath("vocab/ggml-vocab-bert-bge.gguf");
  const std::string path = testing::MakeTempDir() + "/bert.gguf";
  ASSERT_TRUE(tools::Synthesize(o, path).ok());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok());
  auto enc = BertEncoder::Load(**f);
  ASSERT_TRUE(enc.ok()) << enc.status();
  auto tok = Tokenizer::FromGguf(**f);
  ASSERT_TRUE(tok.ok());
  std::vector<std::vector<int32_t>> seqs;
  std::string text;
  for (int i = 0; i < 24; ++i) {
    text += (i % 3 == 0 ? "熊猫 " : "word") + std::to_string(i) + " ";
    std::vector<int32_t> ids = (*tok)->Encode(text, true, false);
    if (i == 23) ids.resize(100, ids.back());  // longer than the context
    seqs.push_back(ids);
  }
  std::vector<std::vector<float>> alone;
  for (const auto& s : seqs) {
    auto e = (*enc)->Embed({s});
    ASSERT_TRUE(e.ok()) << e.status();
    alone.push_back((*e)[0]);
  }
  for (int64_t budget : {4096, 70, 1}) {
    (*enc)->set_max_pass_tokens(budget);
    auto batched = (*enc)->Embed(seqs);
    ASSERT_TRUE(batched.ok()) << batched.status();
    ASSERT_EQ(batched->size(), seqs.size());
    for (size_t s = 0; s < seqs.size(); ++s) {
      for (int i = 0; i < 64; ++i) {
        ASSERT_NEAR((*batched)[s][i], alone[s][i], 2e-6)
            << "budget " << budget << " sequence " << s;
      }
    }
  }
  EXPECT_THAT((*enc)->Embed({seqs[0], {}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("empty")));
  EXPECT_THAT((*enc)->Embed({{1, 2, 999999}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("999999")));
}

INSTANTIATE_TEST_SUITE_P(Pooling, BertEncoderTest,
                         ::testing::Values("mean", "cls"));

// Head sizes on both sides of the attention kernels' register blocking
// (64: the widest blocked case; 72 and 20: the plain path).
TEST(BertEncoderTest, OtherHeadSizesMatchTheReference) {
  for (auto [dim, heads] : {std::pair<int, int>{64, 1}, {72, 1}, {40, 2}}) {
    tools::SynthOptions o;
    o.arch = "bert";
    o.dim = dim;
    o.layers = 1;
    o.heads = heads;
    o.kv_heads = heads;
    o.ffn = 2 * dim;
    o.ctx = 64;
    o.seed = 5;
    o.vocab_from = testing::TestDataPath("vocab/ggml-vocab-bert-bge.gguf");
    const std::string path = testing::MakeTempDir() + "/bert.gguf";
    ASSERT_TRUE(tools::Synthesize(o, path).ok());
    auto f = GgufFile::Open(path);
    ASSERT_TRUE(f.ok());
    auto enc = BertEncoder::Load(**f);
    ASSERT_TRUE(enc.ok()) << enc.status();
    auto tok = Tokenizer::FromGguf(**f);
    ASSERT_TRUE(tok.ok());
    const std::vector<int32_t> ids = (*tok)->Encode(
        "Attention heads of another size still attend to every token here, "
        "twenty or more of them in one sentence.",
        true, false);
    auto got = (*enc)->Embed({ids});
    ASSERT_TRUE(got.ok()) << got.status();
    const Vec want = ReferenceEmbedding(**f, ids, /*mean=*/true);
    for (int i = 0; i < dim; ++i)
      EXPECT_NEAR((*got)[0][i], want[i], 1e-4) << "dim " << dim << " i " << i;
  }
}

TEST(BertEncoderTest, RefusesOtherArchitectures) {
  auto f = GgufFile::Open(testing::TestDataPath("models/stories260K.gguf"));
  ASSERT_TRUE(f.ok());
  EXPECT_THAT(BertEncoder::Load(**f),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("expected bert")));
}

}  // namespace
}  // namespace lumen::engine
