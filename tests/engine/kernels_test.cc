// Kernels against naive loops, table-driven over shapes.

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/linear.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/small_gemm.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/kernels/vec_exp.h"
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

struct Shape {
  int64_t M, K, N;
};

// Every kernel test runs with each instruction-set variant of the small-M
// kernels this CPU supports.
class KernelShapesTest
    : public ::testing::TestWithParam<std::tuple<Shape, SmallGemmIsa>> {
 protected:
  void SetUp() override {
    if (!SetSmallGemmIsa(std::get<1>(GetParam())))
      GTEST_SKIP() << "this CPU lacks AVX-512 F/BW/VL/VNNI";
  }
  void TearDown() override { SetSmallGemmIsa(DetectSmallGemmIsa()); }
  Shape shape() const { return std::get<0>(GetParam()); }
};

TEST_P(KernelShapesTest, SmallGemmF32MatchesNaive) {
  const auto [M, K, N] = shape();
  auto x = Random(M * K, 1), w = Random(N * K, 2);
  std::vector<float> y(M * N);
  SmallGemmF32(x.data(), M, K, w.data(), N, y.data());
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double want = 0;
      for (int64_t k = 0; k < K; ++k)
        want += double(x[m * K + k]) * w[n * K + k];
      EXPECT_NEAR(y[m * N + n], want, 1e-4 * std::sqrt(double(K)))
          << m << "," << n;
    }
  }
}

TEST_P(KernelShapesTest, SmallGemmQ8IsExactOnQuantizedValues) {
  const auto [M, K, N] = shape();
  if (K % kQBlock != 0) GTEST_SKIP() << "int8 needs K % 32 == 0";
  auto x = Random(M * K, 3), w = Random(N * K, 4);
  std::vector<int8_t> xq(M * K), wq(N * K);
  std::vector<float> xs(M * K / 32), ws(N * K / 32);
  QuantizeRowsQ8(x.data(), M, K, xq.data(), xs.data());
  QuantizeRowsQ8(w.data(), N, K, wq.data(), ws.data());
  // Full-range values: the sign trick must not saturate.
  EXPECT_EQ(*std::max_element(xq.begin(), xq.end()), 127);
  std::vector<float> y(M * N);
  SmallGemmQ8(xq.data(), xs.data(), M, K, wq.data(), ws.data(), N, y.data());
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double want = 0, exact = 0;
      for (int64_t k = 0; k < K; ++k) {
        want += double(xq[m * K + k]) * xs[m * K / 32 + k / 32] *
                wq[n * K + k] * ws[n * K / 32 + k / 32];
        exact += double(x[m * K + k]) * w[n * K + k];
      }
      EXPECT_NEAR(y[m * N + n], want, 1e-3 + 1e-5 * std::fabs(want));
      // Quantization error stays small relative to the dot product's scale.
      EXPECT_NEAR(y[m * N + n], exact, 0.05 * std::sqrt(double(K)));
    }
  }
}

TEST_P(KernelShapesTest, LinearAgreesAcrossKernelsAndAddsBias) {
  const auto [M, K, N] = shape();
  auto w = Random(N * K, 5), b = Random(N, 6), x = Random(M * K, 7);
  auto lin = Linear::CreateF32(N, K, w, b);
  ASSERT_TRUE(lin.ok()) << lin.status();
  LinearScratch scratch;
  scratch.Reserve(M, K, N * K);
  std::vector<float> small(M * N), dnnl(M * N);
  (*lin)->ForceKernel(false);
  ASSERT_TRUE((*lin)->Forward(x.data(), M, small.data(), &scratch).ok());
  (*lin)->ForceKernel(true);
  ASSERT_TRUE((*lin)->Forward(x.data(), M, dnnl.data(), &scratch).ok());
  for (int64_t i = 0; i < M * N; ++i)
    EXPECT_NEAR(small[i], dnnl[i], 1e-4 * std::sqrt(double(K)));
  double want = b[0];
  for (int64_t k = 0; k < K; ++k) want += double(x[k]) * w[k];
  EXPECT_NEAR(small[0], want, 1e-4 * std::sqrt(double(K)));
}

TEST_P(KernelShapesTest, Int8LinearAgreesAcrossKernels) {
  const auto [M, K, N] = shape();
  if (K % kQBlock != 0) GTEST_SKIP() << "int8 needs K % 32 == 0";
  auto w = Random(N * K, 8), x = Random(M * K, 9), b = Random(N, 10);
  std::vector<int8_t> wq(N * K);
  std::vector<float> ws(N * K / 32);
  QuantizeRowsQ8(w.data(), N, K, wq.data(), ws.data());
  auto lin = Linear::CreateInt8(N, K, wq, ws, b);
  ASSERT_TRUE(lin.ok()) << lin.status();
  LinearScratch scratch;
  scratch.Reserve(M, K, N * K);
  std::vector<float> small(M * N), dnnl(M * N);
  (*lin)->ForceKernel(false);
  ASSERT_TRUE((*lin)->Forward(x.data(), M, small.data(), &scratch).ok());
  (*lin)->ForceKernel(true);
  ASSERT_TRUE((*lin)->Forward(x.data(), M, dnnl.data(), &scratch).ok());
  // The small kernel also quantizes activations; oneDNN sees them in fp32.
  for (int64_t i = 0; i < M * N; ++i)
    EXPECT_NEAR(small[i], dnnl[i], 0.03 * std::sqrt(double(K)));
}

// The binary search finds any single crossover, including none, in at most
// ceil(log2(buckets + 1)) timings.
TEST(KernelChoiceTest, FindCrossoverFindsEveryCrossoverInFewTimings) {
  for (int buckets : {1, 2, 7, 9}) {
    for (int truth = 0; truth <= buckets; ++truth) {
      int timings = 0;
      const int found = Linear::FindCrossover(buckets, [&](int64_t m) {
        ++timings;
        EXPECT_LT(m, int64_t{1} << buckets) << "timed an unmeasured bucket";
        return m >= (int64_t{1} << truth);
      });
      EXPECT_EQ(found, truth) << buckets << " buckets";
      EXPECT_LE(timings, buckets <= 1   ? 1
                         : buckets <= 7 ? 3
                                        : 4)
          << buckets << " buckets, crossover " << truth;
    }
  }
}

TEST(KernelChoiceTest, MeasuredBucketsReachTheLargestMAndStopAt256) {
  EXPECT_EQ(Linear::MeasuredBuckets(0), 1);
  EXPECT_EQ(Linear::MeasuredBuckets(1), 1);
  EXPECT_EQ(Linear::MeasuredBuckets(3), 2);  // M = 2..3 is bucket 1
  EXPECT_EQ(Linear::MeasuredBuckets(64), 7);
  EXPECT_EQ(Linear::MeasuredBuckets(100), 7);  // bucket 6 holds 64..127
  EXPECT_EQ(Linear::MeasuredBuckets(256), 9);
  EXPECT_EQ(Linear::MeasuredBuckets(2048), 9);
}

// The real timing end to end (under ASan: its buffers sized for max_m):
// the chosen kernel computes what the small-M kernel does.
TEST(KernelChoiceTest, MeasuredChoiceRunsAndAgrees) {
  constexpr int64_t K = 256, N = 96;
  auto w = Random(N * K, 11);
  auto lin = Linear::CreateF32(N, K, w, {});
  ASSERT_TRUE(lin.ok()) << lin.status();
  LinearScratch scratch;
  scratch.Reserve(256, K, N * K);
  auto x = Random(32 * K, 12);
  std::vector<float> forced(32 * N), chosen(32 * N);
  (*lin)->ForceKernel(false);
  ASSERT_TRUE((*lin)->Forward(x.data(), 32, forced.data(), &scratch).ok());
  for (int64_t max_m : {int64_t{1}, int64_t{100}, int64_t{2048}}) {
    (*lin)->MeasureKernelChoice(&scratch, max_m);
    ASSERT_TRUE((*lin)->Forward(x.data(), 32, chosen.data(), &scratch).ok());
    for (int64_t i = 0; i < 32 * N; ++i)
      ASSERT_NEAR(chosen[i], forced[i], 1e-4 * std::sqrt(double(K)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, KernelShapesTest,
    ::testing::Combine(
        ::testing::Values(Shape{1, 64, 8}, Shape{1, 768, 100}, Shape{2, 64, 9},
                          Shape{3, 96, 17}, Shape{5, 256, 64},
                          Shape{17, 128, 33}, Shape{1, 172, 64},
                          Shape{4, 20, 6}, Shape{16, 768, 37},
                          Shape{7, 2048, 12}),
        ::testing::Values(SmallGemmIsa::kAvx2, SmallGemmIsa::kAvx512)),
    [](const auto& info) {
      const Shape s = std::get<0>(info.param);
      return absl::StrCat(
          "M", s.M, "_K", s.K, "_N", s.N,
          std::get<1>(info.param) == SmallGemmIsa::kAvx2 ? "_avx2" : "_avx512");
    });

// The fp16 row ops (the KV cache's) against fp64 on the same halves, at
// lengths with and without a tail past the 8-wide loop; the round trip
// rounds to nearest.
TEST(HalfRowOpsTest, DotAxpyAndConversionsMatchFp64) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const int64_t n : {1, 7, 8, 13, 64, 96}) {
    std::vector<float> a(n), b(n), back(n), y(n, 0.5f);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = normal(rng);
      b[i] = normal(rng);
    }
    std::vector<uint16_t> h(n);
    FloatsToHalves(b.data(), h.data(), n);
    HalvesToFloats(h.data(), back.data(), n);
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) {
      // binary16 has 11 significant bits: half an ulp is 2^-11 relative.
      EXPECT_NEAR(back[i], b[i], std::fabs(b[i]) * 0x1p-11 + 1e-7) << i;
      EXPECT_EQ(back[i], _cvtsh_ss(_cvtss_sh(b[i], 0))) << i;
      dot += double(a[i]) * back[i];
    }
    EXPECT_NEAR(Dot(a.data(), h.data(), n), dot, 1e-5 * n) << "n=" << n;
    Axpy(2.0f, h.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(y[i], 0.5 + 2.0 * back[i], 1e-6) << "n=" << n << " i=" << i;
  }
}

TEST(VecExpTest, MatchesStdExpWithinTwoUlp) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.01371f) {
    float in[8], out[8];
    for (int i = 0; i < 8; ++i) in[i] = x + i * 0.001f;
    _mm256_storeu_ps(out, Exp256(_mm256_loadu_ps(in)));
    for (int i = 0; i < 8; ++i) {
      const double want = std::exp(static_cast<double>(in[i]));
      worst = std::max(worst, std::fabs(out[i] - want) / want);
    }
  }
  EXPECT_LT(worst, 2.5e-7);  // 2 ulp of float
  float big[8] = {-1000, -200, -88, 0, 1, -0.5f, 88.5f, 1000};
  float out[8];
  _mm256_storeu_ps(out, Exp256(_mm256_loadu_ps(big)));
  EXPECT_LT(out[0], 1e-37f);
  EXPECT_GE(out[0], 0.0f);
  EXPECT_FLOAT_EQ(out[3], 1.0f);
  EXPECT_TRUE(std::isfinite(out[7]));
}

}  // namespace
}  // namespace lumen::engine::kernels
