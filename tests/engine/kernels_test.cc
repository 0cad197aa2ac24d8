// Kernels against naive loops, table-driven over shapes.

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/gguf/tensor_convert.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/dnnl_matmul.h"
#include "engine/kernels/f32_panel.h"
#include "engine/kernels/linear.h"
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

// Each kernel a Linear can pick (AVX2: small-M or oneDNN; AVX-512: the fp32
// panels, whatever is forced) against naive loops with the bias, and its
// rows read back exactly.
TEST_P(KernelShapesTest, LinearAgreesAcrossKernelsAndAddsBias) {
  const auto [M, K, N] = shape();
  auto w = Random(N * K, 5), b = Random(N, 6), x = Random(M * K, 7);
  auto lin = Linear::CreateF32(N, K, w, b);
  ASSERT_TRUE(lin.ok()) << lin.status();
  EXPECT_EQ((*lin)->f32_panel(),
            std::get<1>(GetParam()) == SmallGemmIsa::kAvx512);
  LinearScratch scratch;
  scratch.Reserve(M, K);
  for (const bool dnnl : {false, true}) {
    std::vector<float> y(M * N);
    (*lin)->ForceKernel(dnnl);
    ASSERT_TRUE((*lin)->Forward(x.data(), M, y.data(), &scratch).ok());
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        double want = b[n];
        for (int64_t k = 0; k < K; ++k)
          want += double(x[m * K + k]) * w[n * K + k];
        ASSERT_NEAR(y[m * N + n], want, 1e-4 * std::sqrt(double(K)))
            << "dnnl " << dnnl << " at " << m << "," << n;
      }
    }
  }
  std::vector<float> row(K);
  for (int64_t n = 0; n < N; ++n) {
    (*lin)->DequantizeRow(n, row.data());
    ASSERT_TRUE(std::equal(row.begin(), row.end(), w.begin() + n * K)) << n;
  }
}

// fp32 panels (AVX-512) run one kernel at every M: a row's outputs are the
// same bits whichever rows share its step, in every tail of N and M, and
// with K in one chunk or two (1024 columns a pass).
class F32PanelTest : public ::testing::TestWithParam<Shape> {};

TEST_P(F32PanelTest, RowsHaveTheSameBitsAtEveryM) {
  ScopedSmallGemmIsa avx512(SmallGemmIsa::kAvx512);
  if (!avx512.ok()) GTEST_SKIP() << "this CPU lacks AVX-512 F/BW/VL/VNNI";
  const int64_t K = GetParam().K, N = GetParam().N, kMaxM = GetParam().M;
  const auto w = Random(N * K, 31), x = Random(kMaxM * K, 32);
  auto lin = Linear::CreateF32(N, K, w, {});
  ASSERT_TRUE(lin.ok()) << lin.status();
  ASSERT_TRUE((*lin)->f32_panel());
  LinearScratch scratch;
  scratch.Reserve(kMaxM, K);
  std::vector<float> alone(kMaxM * N);
  for (int64_t m = 0; m < kMaxM; ++m) {
    ASSERT_TRUE((*lin)->Forward(&x[m * K], 1, &alone[m * N], &scratch).ok());
  }
  for (int64_t M = 2; M <= kMaxM; ++M) {
    std::vector<float> y(M * N);
    ASSERT_TRUE((*lin)->Forward(x.data(), M, y.data(), &scratch).ok());
    for (int64_t i = 0; i < M * N; ++i)
      ASSERT_EQ(y[i], alone[i]) << "M " << M << ", row " << i / N;
  }
}

// Every row lands in the panel exactly, each read once from the source, and
// the padding rows (to a multiple of 48) are written as zeros over whatever
// the buffer held.
TEST(F32PanelTest, FillsEveryRowOnceAndZeroesThePadding) {
  for (int64_t N : {int64_t{21}, int64_t{48}, int64_t{50}}) {
    constexpr int64_t K = 40;
    const auto w = Random(N * K, 33);
    std::vector<std::atomic<int>> reads(N);
    std::vector<float> panel(F32PanelFloats(N, K),
                             std::numeric_limits<float>::quiet_NaN());
    ASSERT_TRUE(FillF32Panel(
                    N, K,
                    [&](int64_t first, int64_t count, float* out) {
                      for (int64_t r = first; r < first + count; ++r)
                        ++reads[r];
                      std::copy_n(w.data() + first * K, count * K, out);
                      return absl::OkStatus();
                    },
                    panel.data())
                    .ok());
    std::vector<float> row(K);
    for (int64_t n = 0; n < N; ++n) {
      ASSERT_EQ(reads[n], 1) << "N " << N << ", row " << n;
      F32PanelRow(panel.data(), K, n, row.data());
      ASSERT_TRUE(std::equal(row.begin(), row.end(), w.begin() + n * K))
          << "N " << N << ", row " << n;
    }
    for (int64_t n = N; n < (N + 47) / 48 * 48; ++n) {
      F32PanelRow(panel.data(), K, n, row.data());
      ASSERT_TRUE(std::all_of(row.begin(), row.end(),
                              [](float v) { return v == 0.0f; }))
          << "N " << N << ", padding row " << n;
    }
  }
}

TEST(F32PanelTest, ReturnsTheSourcesError) {
  constexpr int64_t N = 64, K = 8;
  auto failing = [](int64_t first, int64_t count, float* out) {
    std::fill_n(out, count * K, 1.0f);
    if (first <= 40 && 40 < first + count)  // one tile, whatever the team
      return absl::DataLossError(absl::StrCat("row ", first, " unreadable"));
    return absl::OkStatus();
  };
  std::vector<float> panel(F32PanelFloats(N, K));
  const absl::Status s = FillF32Panel(N, K, failing, panel.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_EQ(s.message(), "row 32 unreadable");
  const auto linear = Linear::CreateF32FromRows(N, K, failing, {});
  EXPECT_EQ(linear.status().code(), absl::StatusCode::kDataLoss);
}

INSTANTIATE_TEST_SUITE_P(Shapes, F32PanelTest,
                         ::testing::Values(Shape{41, 200, 37},
                                           Shape{19, 1100, 50}),
                         [](const auto& info) {
                           return absl::StrCat("K", info.param.K, "_N",
                                               info.param.N);
                         });

// The vector roundings against independent scalar ones (the significand
// rounded with nearbyint, ties to even: 11 bits for F16, with its
// subnormal step and overflow to infinity, 8 for BF16), over normal,
// subnormal, tie, huge and special values, at lengths that end in the
// vector loop and in every length of scalar tail.
float ReferenceRounding(float x, int bits, bool f16) {
  if (!std::isfinite(x) || x == 0) return x;
  const double a = std::fabs(double(x));
  double r;
  if (f16 && a < 0x1p-14) {
    r = std::nearbyint(a * 0x1p24) * 0x1p-24;
  } else {
    int e;
    const double m = std::frexp(a, &e);  // [0.5, 1)
    r = std::ldexp(std::nearbyint(m * std::ldexp(1.0, bits)), e - bits);
  }
  const double largest = f16 ? 65504 : std::numeric_limits<float>::max();
  if (r > largest) r = std::numeric_limits<double>::infinity();
  return static_cast<float>(std::copysign(r, double(x)));
}

// Models load on a transient thread and run on the engine thread (and the
// embedding lanes run one encoder's matmuls at once): a primitive created on
// a thread that has exited runs on two others at the same time, each
// matching a naive product.
TEST(DnnlMatmulTest, RunsOnOtherThreadsThanTheOneThatCreatedIt) {
  constexpr int64_t M = 40, K = 96, N = 72;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> w(N * K), bias(N);
  for (float& v : w) v = u(rng);
  for (float& v : bias) v = u(rng);
  absl::StatusOr<std::unique_ptr<DnnlMatmulF32>> mm;
  std::thread([&] { mm = DnnlMatmulF32::Create(K, N, bias.data()); }).join();
  ASSERT_TRUE(mm.ok()) << mm.status();
  auto run = [&](uint32_t seed, double* worst) {
    std::mt19937 r(seed);
    std::vector<float> x(M * K), y(M * N);
    for (float& v : x) v = u(r);
    for (int rep = 0; rep < 20; ++rep) {
      ASSERT_TRUE((*mm)->Run(x.data(), M, w.data(), y.data()).ok());
    }
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        double want = bias[n];
        for (int64_t k = 0; k < K; ++k)
          want += double(x[m * K + k]) * w[n * K + k];
        *worst = std::max(*worst, std::abs(want - y[m * N + n]));
      }
    }
  };
  double worst_a = 0, worst_b = 0;
  std::thread a([&] { run(1, &worst_a); }), b([&] { run(2, &worst_b); });
  a.join();
  b.join();
  EXPECT_LT(worst_a, 1e-4);
  EXPECT_LT(worst_b, 1e-4);
}

TEST(InputRoundingTest, RoundToF16AndBf16MatchScalarRounding) {
  const std::vector<float> special = {1.0f + 0x1p-11f,
                                      1.0f + 3 * 0x1p-11f,
                                      1.0f + 0x1p-8f,
                                      1.0f + 3 * 0x1p-8f,
                                      -0x1p-20f,
                                      7e-8f,
                                      65519.0f,
                                      65520.0f,
                                      1e6f,
                                      std::numeric_limits<float>::max(),
                                      std::numeric_limits<float>::infinity(),
                                      -0.0f,
                                      0.0f,
                                      std::numeric_limits<float>::quiet_NaN(),
                                      -3.14159f,
                                      2.5e-5f};
  auto check = [](const std::vector<float>& x) {
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<float> f16(n), bf16(n);
    RoundToF16(x.data(), n, f16.data());
    RoundToBf16(x.data(), n, bf16.data());
    for (int64_t i = 0; i < n; ++i) {
      if (std::isnan(x[i])) {
        EXPECT_TRUE(std::isnan(f16[i]) && std::isnan(bf16[i]));
        continue;
      }
      EXPECT_EQ(f16[i], ReferenceRounding(x[i], 11, true))
          << x[i] << " at " << i << " of " << n;
      EXPECT_EQ(bf16[i], ReferenceRounding(x[i], 8, false))
          << x[i] << " at " << i << " of " << n;
    }
  };
  // Every prefix: 1-7 values are all tail, 9-15 end in a tail of 1-7.
  for (size_t n = 1; n <= special.size(); ++n)
    check(std::vector<float>(special.begin(), special.begin() + n));
  std::vector<float> many = Random(997, 21, 3.0f);
  many.insert(many.end(), special.begin(), special.end());
  check(many);
  // The ties went to the even neighbour.
  float out[4];
  RoundToF16(special.data(), 2, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 1.0f + 0x1p-9f);
  RoundToBf16(special.data() + 2, 2, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 1.0f + 0x1p-6f);
}

// A matrix that rounds its inputs computes exactly what the same matrix
// computes on inputs rounded beforehand, with either kernel, and not what
// it computes on the unrounded inputs.
TEST(InputRoundingTest, RoundingLinearEqualsPlainLinearOnRoundedInputs) {
  constexpr int64_t M = 5, K = 96, N = 24;
  const auto w = Random(N * K, 22), x = Random(M * K, 23);
  // Both instruction sets: on AVX-512 the fp32 panels, on AVX2 the small-M
  // kernel and oneDNN.
  for (const auto& [isa, rounding] :
       {std::pair{SmallGemmIsa::kAvx2, InputRounding::kF16},
        std::pair{SmallGemmIsa::kAvx2, InputRounding::kBF16},
        std::pair{SmallGemmIsa::kAvx512, InputRounding::kF16},
        std::pair{SmallGemmIsa::kAvx512, InputRounding::kBF16}}) {
    ScopedSmallGemmIsa scoped(isa);
    if (!scoped.ok()) continue;  // this CPU lacks AVX-512
    auto rounding_linear = Linear::CreateF32(N, K, w, {});
    auto plain = Linear::CreateF32(N, K, w, {});
    ASSERT_TRUE(rounding_linear.ok() && plain.ok());
    ASSERT_TRUE((*rounding_linear)->SetInputRounding(rounding).ok());
    std::vector<float> rounded(M * K);
    if (rounding == InputRounding::kF16) {
      for (int64_t i = 0; i < M * K; ++i)
        rounded[i] = HalfToFloat(FloatToHalf(x[i]));
    } else {
      RoundToBf16(x.data(), M * K, rounded.data());
    }
    LinearScratch scratch;
    scratch.Reserve(M, K);
    for (const bool dnnl : {false, true}) {
      (*rounding_linear)->ForceKernel(dnnl);
      (*plain)->ForceKernel(dnnl);
      std::vector<float> got(M * N), want(M * N), unrounded(M * N);
      ASSERT_TRUE(
          (*rounding_linear)->Forward(x.data(), M, got.data(), &scratch).ok());
      ASSERT_TRUE(
          (*plain)->Forward(rounded.data(), M, want.data(), &scratch).ok());
      ASSERT_TRUE(
          (*plain)->Forward(x.data(), M, unrounded.data(), &scratch).ok());
      EXPECT_EQ(got, want) << "dnnl " << dnnl << ", panels "
                           << (*plain)->f32_panel();
      EXPECT_NE(got, unrounded)
          << "dnnl " << dnnl << ", panels " << (*plain)->f32_panel();
    }
  }
  // Only fp32 matrices round: a packed one refuses.
  std::vector<PackedPart> parts(1);
  parts[0].rows = N;
  parts[0].f32 = w;
  auto packed = Linear::CreatePacked(K, std::move(parts), {});
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ((*packed)->SetInputRounding(InputRounding::kF16).code(),
            absl::StatusCode::kInvalidArgument);
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
  ScopedSmallGemmIsa avx2(SmallGemmIsa::kAvx2);  // row-major: kernels to time
  constexpr int64_t K = 256, N = 96;
  auto w = Random(N * K, 11);
  auto lin = Linear::CreateF32(N, K, w, {});
  ASSERT_TRUE(lin.ok()) << lin.status();
  LinearScratch scratch;
  scratch.Reserve(256, K);
  auto x = Random(32 * K, 12);
  std::vector<float> forced(32 * N), chosen(32 * N);
  (*lin)->ForceKernel(false);
  ASSERT_TRUE((*lin)->Forward(x.data(), 32, forced.data(), &scratch).ok());
  for (int64_t max_m : {int64_t{1}, int64_t{100}, int64_t{2048}}) {
    (*lin)->MeasureKernelChoice(max_m);
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
                          Shape{7, 2048, 12}, Shape{5, 1100, 50}),
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
