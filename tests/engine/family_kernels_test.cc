// The kernels the model families added, against naive double loops,
// table-driven: GELU-tanh gating, RMSNorm of rows and per head, RoPE angles
// from per-pair frequencies with both pairings and partial rotation, and paged
// attention restricted to a sliding window (every head dimension the
// kernel specializes plus a generic one, windows shorter and longer than a
// block, grouped-query heads, scattered blocks).

#include <omp.h>

#include <cmath>
#include <random>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/paged_attention.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/kv_cache.h"
#include "gtest/gtest.h"

namespace lumen::engine::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(GeluTanhMulTest, MatchesTheTanhFormulaInDouble) {
  for (int64_t ff : {1, 7, 8, 13, 64, 385}) {
    const int64_t rows = 3;
    std::vector<float> gate_up = Random(rows * 2 * ff, 7, 3.0f);
    // Far tails and zero, where the formula saturates.
    gate_up[0] = -30.0f;
    if (ff > 2) {
      gate_up[1] = 25.0f;
      gate_up[2] = 0.0f;
    }
    std::vector<float> out(rows * ff);
    GeluTanhMul(gate_up.data(), rows, ff, out.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < ff; ++i) {
        const double g = gate_up[r * 2 * ff + i];
        const double u = gate_up[r * 2 * ff + ff + i];
        const double want =
            0.5 * g *
            (1 + std::tanh(std::sqrt(2 / M_PI) * (g + 0.044715 * g * g * g))) *
            u;
        // Absolute 1e-9 for the far negative tail, where 1 + tanh
        // cancels in the reference itself.
        EXPECT_NEAR(out[r * ff + i], want, 2e-6 * std::fabs(want) + 1e-9)
            << "ff " << ff << " row " << r << " i " << i << " g " << g;
      }
    }
  }
}

TEST(HeadRmsNormTest, NormalizesEveryHeadOfStridedRows) {
  const int64_t rows = 5, heads = 3, hd = 24, stride = heads * hd + 40;
  const std::vector<float> x0 = Random(rows * stride, 3, 2.0f);
  const std::vector<float> w = Random(hd, 4);
  std::vector<float> x = x0;
  HeadRmsNorm(x.data(), stride, rows, heads, hd, w.data(), 1e-6f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* in = &x0[r * stride + h * hd];
      double ss = 0;
      for (int64_t i = 0; i < hd; ++i) ss += double(in[i]) * in[i];
      const double scale = 1 / std::sqrt(ss / hd + 1e-6);
      for (int64_t i = 0; i < hd; ++i) {
        EXPECT_NEAR(x[r * stride + h * hd + i], in[i] * scale * w[i], 1e-5);
      }
    }
    // Values past the heads are untouched.
    for (int64_t i = heads * hd; i < stride; ++i)
      EXPECT_EQ(x[r * stride + i], x0[r * stride + i]);
  }
}

// Whole rows, every tail SumOfSquares' 16 lanes can leave (dimensions 1 to
// 33), model widths, and one batch large enough to run on threads, against
// double loops.
TEST(RmsNormTest, ScalesEveryRowByItsRootMeanSquare) {
  std::vector<std::pair<int64_t, int64_t>> shapes = {
      {2, 768}, {2, 1000}, {80, 1000}};
  for (int64_t dim = 1; dim <= 33; ++dim) shapes.push_back({3, dim});
  for (const auto& [rows, dim] : shapes) {
    const std::vector<float> x = Random(rows * dim, 5, 3.0f);
    const std::vector<float> w = Random(dim, 6);
    std::vector<float> out(rows * dim);
    RmsNorm(x.data(), w.data(), rows, dim, 1e-5f, out.data());
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = &x[r * dim];
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += double(in[i]) * in[i];
      const double scale = 1 / std::sqrt(ss / dim + 1e-5);
      for (int64_t i = 0; i < dim; ++i) {
        const double want = in[i] * scale * w[i];
        ASSERT_NEAR(out[r * dim + i], want, 2e-6 * (1 + std::abs(want)))
            << rows << "x" << dim << ", row " << r << " element " << i;
      }
    }
  }
}

struct RopeCase {
  RopeStyle style;
  int64_t head_dim, rope_dim;
};

class RopeTest : public ::testing::TestWithParam<RopeCase> {};

TEST_P(RopeTest, RotatesPairsByPositionTimesFrequency) {
  const RopeCase c = GetParam();
  const int64_t half = c.rope_dim / 2, heads = 3, rows = 4;
  const int32_t positions[rows] = {0, 1, 37, 4095};
  std::vector<double> freq(half);
  for (int64_t i = 0; i < half; ++i)
    freq[i] = std::pow(1e4, -2.0 * i / c.rope_dim) / (1 + i);
  const float mscale = 1.25f;
  std::vector<float> cs(rows * half), sn(rows * half);
  RopeAngles(positions, rows, freq.data(), half, mscale, cs.data(), sn.data());
  const int64_t stride = heads * c.head_dim + 5;
  const std::vector<float> x0 = Random(rows * stride, 9);
  std::vector<float> x = x0;
  Rope(x.data(), stride, cs.data(), sn.data(), rows, heads, c.head_dim,
       c.rope_dim, c.style);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* in = &x0[r * stride + h * c.head_dim];
      const float* got = &x[r * stride + h * c.head_dim];
      std::vector<double> want(in, in + c.head_dim);
      for (int64_t i = 0; i < half; ++i) {
        const double theta = positions[r] * freq[i];
        const int64_t a = c.style == RopeStyle::kAdjacent ? 2 * i : i;
        const int64_t b =
            c.style == RopeStyle::kAdjacent ? 2 * i + 1 : i + half;
        want[a] = mscale * (in[a] * std::cos(theta) - in[b] * std::sin(theta));
        want[b] = mscale * (in[a] * std::sin(theta) + in[b] * std::cos(theta));
      }
      for (int64_t i = 0; i < c.head_dim; ++i)
        EXPECT_NEAR(got[i], want[i], 2e-5) << "row " << r << " dim " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Styles, RopeTest,
    ::testing::Values(RopeCase{RopeStyle::kAdjacent, 32, 32},
                      RopeCase{RopeStyle::kHalves, 32, 32},
                      RopeCase{RopeStyle::kHalves, 64, 16},
                      RopeCase{RopeStyle::kAdjacent, 24, 8}),
    [](const auto& info) {
      return absl::StrCat(
          info.param.style == RopeStyle::kAdjacent ? "adjacent" : "halves",
          "_hd", info.param.head_dim, "_rot", info.param.rope_dim);
    });

struct AttentionCase {
  int64_t head_dim, window, block_size;
  KvElement element = KvElement::kF32;
  int64_t heads = 4, kv_heads = 2;
};

// Every case runs on each instruction set the CPU has (AVX-512 has its own
// register kernel for head sizes 16..128).
class WindowedAttentionTest
    : public ::testing::TestWithParam<std::tuple<AttentionCase, SmallGemmIsa>> {
 protected:
  void SetUp() override {
    if (!SetSmallGemmIsa(std::get<1>(GetParam())))
      GTEST_SKIP() << "CPU lacks AVX-512";
  }
  void TearDown() override { SetSmallGemmIsa(DetectSmallGemmIsa()); }
};

TEST_P(WindowedAttentionTest, MatchesNaiveSoftmaxOverTheWindow) {
  const AttentionCase c = std::get<0>(GetParam());
  const int64_t heads = c.heads, kv_heads = c.kv_heads, hd = c.head_dim,
                bs = c.block_size;
  const int64_t len = 50, blocks = (len + bs - 1) / bs, layer = 1;
  auto cache = KvCache::Create({2, kv_heads, hd, bs, 2 * blocks, c.element});
  ASSERT_TRUE(cache.ok());
  KvCache& kv = **cache;
  // The sequence owns every other block, backwards: scattered blocks.
  std::vector<int32_t> table(blocks);
  for (int64_t b = 0; b < blocks; ++b)
    table[b] = static_cast<int32_t>(2 * (blocks - 1 - b) + 1);
  std::vector<float> k = Random(len * kv_heads * hd, 11);
  std::vector<float> v = Random(len * kv_heads * hd, 12);
  for (int64_t p = 0; p < len; ++p) {
    for (int64_t h = 0; h < kv_heads; ++h) {
      float* kp = &k[(p * kv_heads + h) * hd];
      float* vp = &v[(p * kv_heads + h) * hd];
      uint8_t* kc = kv.Row(kv.Keys<uint8_t>(table[p / bs], layer), h, p % bs);
      uint8_t* vc = kv.Row(kv.Values<uint8_t>(table[p / bs], layer), h, p % bs);
      StoreKvRow(c.element, kp, hd, kc);
      StoreKvRow(c.element, vp, hd, vc);
      // The reference below uses what the cache holds.
      LoadKvRow(c.element, kc, hd, kp);
      LoadKvRow(c.element, vc, hd, vp);
    }
  }
  if (c.element != KvElement::kF32) {
    ASSERT_NE(k, Random(len * kv_heads * hd, 11)) << "nothing rounded";
  }
  // Queries at positions the window cuts at every offset within a block.
  std::vector<AttentionQuery> queries;
  for (int32_t p : {0, 1, 5, 15, 16, 17, 31, 32, 49})
    queries.push_back({p, table.data()});
  const int64_t n = static_cast<int64_t>(queries.size());
  const std::vector<float> q = Random(n * heads * hd, 13, 0.5f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int threads = omp_get_max_threads();
  const AttentionShape shape{heads, kv_heads, hd, scale, c.window};
  std::vector<float> scratch(threads * AttentionScratchPerThread(shape, 64)),
      out(n * heads * hd);
  PagedAttention(q.data(), heads * hd, queries.data(), n, kv, layer, shape,
                 scratch.data(), threads, 64, out.data());
  for (int64_t t = 0; t < n; ++t) {
    const int64_t pos = queries[t].position;
    const int64_t first =
        c.window > 0 ? std::max<int64_t>(0, pos - c.window + 1) : 0;
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kvh = h / (heads / kv_heads);
      std::vector<double> s;
      double mx = -1e300;
      for (int64_t p = first; p <= pos; ++p) {
        double dot = 0;
        for (int64_t i = 0; i < hd; ++i)
          dot += double(q[(t * heads + h) * hd + i]) *
                 k[(p * kv_heads + kvh) * hd + i];
        s.push_back(dot * scale);
        mx = std::max(mx, s.back());
      }
      double sum = 0;
      for (double& e : s) sum += (e = std::exp(e - mx));
      for (int64_t i = 0; i < hd; ++i) {
        double want = 0;
        for (int64_t p = first; p <= pos; ++p)
          want += s[p - first] / sum * v[(p * kv_heads + kvh) * hd + i];
        EXPECT_NEAR(out[(t * heads + h) * hd + i], want, 2e-5)
            << "position " << pos << " head " << h << " dim " << i;
      }
    }
  }
  // Alone or in a pair, a token's heads are grouped into other work items
  // (smaller ones, so that every thread has one; on AVX-512 the pair at
  // positions 0 and 1 is a tile); its result keeps every bit.
  std::vector<float> pair(2 * heads * hd);
  PagedAttention(q.data(), heads * hd, queries.data(), 2, kv, layer, shape,
                 scratch.data(), threads, 64, pair.data());
  for (int64_t i = 0; i < 2 * heads * hd; ++i)
    ASSERT_EQ(pair[i], out[i]) << "pair, element " << i;
  for (int64_t t = 0; t < n; ++t) {
    std::vector<float> solo(heads * hd);
    PagedAttention(q.data() + t * heads * hd, heads * hd, &queries[t], 1, kv,
                   layer, shape, scratch.data(), threads, 64, solo.data());
    for (int64_t i = 0; i < heads * hd; ++i) {
      ASSERT_EQ(solo[i], out[t * heads * hd + i])
          << "token " << t << " element " << i;
    }
  }
  // One thread's scratch, then a canary: no item's score rows reach past
  // the scratch (a decoding token's item takes at most its rows, which is
  // fewer than 40 heads), and the results keep every bit.
  {
    constexpr float kCanary = 1e30f;
    const int64_t floats = AttentionScratchPerThread(shape, 64);
    std::vector<float> one_thread(floats + 64 * 64, kCanary),
        single(n * heads * hd);
    PagedAttention(q.data(), heads * hd, queries.data(), n, kv, layer, shape,
                   one_thread.data(), /*scratch_threads=*/1, 64, single.data());
    for (int64_t i = floats; i < static_cast<int64_t>(one_thread.size()); ++i)
      ASSERT_EQ(one_thread[i], kCanary) << "scratch overrun at " << i - floats;
    for (int64_t i = 0; i < n * heads * hd; ++i)
      ASSERT_EQ(single[i], out[i]) << "one thread, element " << i;
  }
  // Prefill chunks: positions 0..len-1 in one call (tiles of 16, 16, 16 and
  // 2), then 9..44 (tiles of 16 that start mid-block and one of 4, whose
  // items then hold part of a KV head's query heads), their queries
  // apart by more than a row (as in the engine's qkv rows). On AVX-512 with
  // blocks of 16 they run in tiles of consecutive tokens that score whole
  // blocks from transposed keys; each token still has the bits it has alone. A
  // context of 2^17 positions shrinks the tiles (their score rows must fit the
  // scratch budget), so tiles then start and end elsewhere.
  const int64_t q_stride = heads * hd + 24;
  const std::vector<float> qc = Random(len * q_stride, 14, 0.5f);
  const int64_t long_context = int64_t{1} << 17;
  if (AttentionTileQueries(shape, 64) > 1) {  // head sizes the tiles hold
    EXPECT_LT(AttentionTileQueries(shape, long_context),
              AttentionTileQueries(shape, 64));
  }
  // One thread, then at most two threads' scratch (4 MiB each at the long
  // context).
  for (const int chunk_threads : {1, std::min(threads, 2)}) {
    for (const int64_t context : {int64_t{64}, long_context}) {
      // Followed by a canary, as above (which one thread's rows reach): tiles
      // fill every row too.
      const int64_t floats =
          chunk_threads * AttentionScratchPerThread(shape, context);
      std::vector<float> chunk_scratch(floats + 64 * 64, 1e30f);
      for (const auto& [from, to] :
           {std::pair<int32_t, int32_t>{0, len}, {9, 45}}) {
        std::vector<AttentionQuery> chunk;
        for (int32_t p = from; p < to; ++p) chunk.push_back({p, table.data()});
        const int64_t m = to - from;
        std::vector<float> chunk_out(m * heads * hd);
        PagedAttention(qc.data(), q_stride, chunk.data(), m, kv, layer, shape,
                       chunk_scratch.data(), chunk_threads, context,
                       chunk_out.data());
        for (int64_t i = floats; i < static_cast<int64_t>(chunk_scratch.size());
             ++i) {
          ASSERT_EQ(chunk_scratch[i], 1e30f)
              << "scratch overrun at " << i - floats;
        }
        for (int64_t t = 0; t < m; ++t) {
          std::vector<float> solo(heads * hd);
          PagedAttention(qc.data() + t * q_stride, q_stride, &chunk[t], 1, kv,
                         layer, shape, scratch.data(), threads, 64,
                         solo.data());
          for (int64_t i = 0; i < heads * hd; ++i) {
            ASSERT_EQ(solo[i], chunk_out[t * heads * hd + i])
                << chunk_threads << " threads, context " << context
                << ", chunk from " << from << ", token " << t << " element "
                << i;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Windows, WindowedAttentionTest,
    ::testing::Combine(
        ::testing::Values(AttentionCase{8, 0, 16}, AttentionCase{16, 1, 16},
                          AttentionCase{16, 0, 16},
                          AttentionCase{16, 20, 16, KvElement::kF16},
                          AttentionCase{32, 3, 16}, AttentionCase{64, 16, 16},
                          AttentionCase{128, 17, 16}, AttentionCase{24, 5, 16},
                          // Whole blocks for many tokens of a tile: every
                          // group size of the tile kernels' registers.
                          AttentionCase{32, 0, 16}, AttentionCase{128, 0, 16},
                          AttentionCase{32, 40, 16, KvElement::kF16},
                          AttentionCase{128, 40, 16, KvElement::kQ8_0},
                          AttentionCase{32, 7, 4}, AttentionCase{24, 0, 4},
                          AttentionCase{64, 64, 16},
                          AttentionCase{8, 0, 16, KvElement::kF16},
                          AttentionCase{64, 0, 16, KvElement::kF16},
                          AttentionCase{128, 17, 16, KvElement::kF16},
                          AttentionCase{24, 5, 16, KvElement::kF16},
                          AttentionCase{32, 7, 4, KvElement::kF16},
                          AttentionCase{8, 0, 16, KvElement::kQ8_0},
                          AttentionCase{16, 3, 16, KvElement::kQ8_0},
                          AttentionCase{64, 0, 16, KvElement::kQ8_0},
                          AttentionCase{128, 17, 16, KvElement::kQ8_0},
                          AttentionCase{24, 5, 16, KvElement::kQ8_0},
                          AttentionCase{96, 7, 4, KvElement::kQ8_0},
                          // Grouped-query heads: 5 or 3 per KV head, or all
                          // on one.
                          AttentionCase{64, 0, 16, KvElement::kF16, 10, 2},
                          AttentionCase{32, 9, 16, KvElement::kQ8_0, 12, 4},
                          AttentionCase{24, 3, 4, KvElement::kF32, 6, 1},
                          // More heads than a thread's scratch has rows (16
                          // at context 64): on AVX-512 a decoding token's
                          // heads go into items of at most 16.
                          AttentionCase{32, 0, 16, KvElement::kF16, 40, 40}),
        ::testing::Values(SmallGemmIsa::kAvx2, SmallGemmIsa::kAvx512)),
    [](const auto& info) {
      const AttentionCase& c = std::get<0>(info.param);
      return absl::StrCat(
          "hd", c.head_dim, "_window", c.window, "_block", c.block_size, "_",
          KvElementName(c.element), "_heads", c.heads, "_", c.kv_heads,
          std::get<1>(info.param) == SmallGemmIsa::kAvx2 ? "_avx2" : "_avx512");
    });

// The q8_0 row: codes and fp16 scales per block of 32 (one block under 32
// values), within half a step of each value; zero rows stay zero; head
// sizes it cannot split are refused with the size named.
TEST(KvRowTest, Q8RowsRoundTripWithinHalfAStep) {
  for (int64_t hd : {8, 24, 32, 64, 96, 128}) {
    std::vector<float> x = Random(hd, 21, 3.0f), back(hd);
    std::vector<uint8_t> row(KvRowBytes(KvElement::kQ8_0, hd));
    EXPECT_EQ(static_cast<int64_t>(row.size()),
              hd + 2 * std::max<int64_t>(1, hd / 32));
    StoreKvRow(KvElement::kQ8_0, x.data(), hd, row.data());
    LoadKvRow(KvElement::kQ8_0, row.data(), hd, back.data());
    const int64_t block = KvQ8BlockLength(hd);
    for (int64_t b0 = 0; b0 < hd; b0 += block) {
      float amax = 0;
      for (int64_t i = b0; i < b0 + block; ++i)
        amax = std::max(amax, std::fabs(x[i]));
      // Half a step, plus the fp16 rounding of the stored scale (relative
      // 2^-11) times a code of at most 127.
      const double d = amax / 127.0;
      for (int64_t i = b0; i < b0 + block; ++i) {
        EXPECT_NEAR(back[i], x[i], 0.5 * d + 127 * d * 0x1p-11)
            << "head size " << hd << " value " << i;
      }
    }
    std::vector<float> zero(hd, 0.0f);
    StoreKvRow(KvElement::kQ8_0, zero.data(), hd, row.data());
    LoadKvRow(KvElement::kQ8_0, row.data(), hd, back.data());
    EXPECT_EQ(back, zero);
  }
  // A NaN or an infinity poisons its own block (as NaN, as fp16 would keep
  // it), not the next one.
  for (float bad : {NAN, INFINITY, 1e9f}) {
    std::vector<float> x = Random(64, 22), back(64);
    x[3] = bad;
    std::vector<uint8_t> row(KvRowBytes(KvElement::kQ8_0, 64));
    StoreKvRow(KvElement::kQ8_0, x.data(), 64, row.data());
    LoadKvRow(KvElement::kQ8_0, row.data(), 64, back.data());
    for (int i = 0; i < 32; ++i) EXPECT_TRUE(std::isnan(back[i])) << i;
    for (int i = 32; i < 64; ++i) EXPECT_NEAR(back[i], x[i], 0.05) << i;
  }
  EXPECT_EQ(KvRowBytes(KvElement::kF16, 64), 128);
  EXPECT_EQ(KvRowBytes(KvElement::kQ8_0, 64), 68);
  auto bad = KvCache::Create({1, 1, 80, 16, 4, KvElement::kQ8_0});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("80 wide"), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(ParseKvElement("q8_0").value(), KvElement::kQ8_0);
  EXPECT_FALSE(ParseKvElement("q4_0").ok());
}

}  // namespace
}  // namespace lumen::engine::kernels
