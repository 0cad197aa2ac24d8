// Packed GGUF weight formats (engine/quant): the engine's dequantizers, row
// dot kernels (AVX2 and AVX-512) and panel GEMM against the naive reference
// of naive_quants.h, on random blocks of every type; the quantizers' error.

#include "engine/quant/quant_kernels.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "engine/gguf/ggml_type.h"
#include "engine/kernels/linear.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/quant/k_tiles.h"
#include "engine/quant/quant_type.h"
#include "gtest/gtest.h"
#include "tests/engine/naive_quants.h"

namespace lumen::engine {
namespace {

using kernels::SmallGemmIsa;

struct TypeCase {
  GgmlType type;
  std::vector<int> fp16_fields;  // byte offsets of fp16 scales in a block
  double max_rel_rms;            // quantization error bound, Gaussian data
};

const std::vector<TypeCase>& Types() {
  static const std::vector<TypeCase> types = {
      {GgmlType::kQ4_0, {0}, 0.12},    {GgmlType::kQ4_1, {0, 2}, 0.10},
      {GgmlType::kQ5_0, {0}, 0.06},    {GgmlType::kQ5_1, {0, 2}, 0.05},
      {GgmlType::kQ8_0, {0}, 0.006},   {GgmlType::kQ2_K, {80, 82}, 0.40},
      {GgmlType::kQ3_K, {108}, 0.20},  {GgmlType::kQ4_K, {0, 2}, 0.10},
      {GgmlType::kQ5_K, {0, 2}, 0.05}, {GgmlType::kQ6_K, {208}, 0.025},
      {GgmlType::kIQ4_NL, {0}, 0.10},  {GgmlType::kIQ4_XS, {0}, 0.10},
  };
  return types;
}

std::string TypeName(GgmlType t) { return GgmlTypeName(t); }

// Random bytes for every field, with the fp16 scales replaced by small
// finite values of either sign: exercises every bit of the codes and
// sub-block scales, unlike blocks a quantizer makes.
std::vector<uint8_t> RandomBlocks(const TypeCase& c, int64_t rows, int64_t cols,
                                  uint32_t seed) {
  const quant::QuantType* t = quant::FindQuantType(c.type);
  const int64_t blocks = rows * cols / t->block_elems;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-0.01f, 0.01f);
  std::vector<uint8_t> data(blocks * t->block_bytes);
  for (uint8_t& b : data) b = static_cast<uint8_t>(byte(rng));
  // Q8_0 values are in [-127, 127] as every quantizer writes them (the AVX2
  // kernel clamps -128, which the format allows but nothing produces).
  if (c.type == GgmlType::kQ8_0) {
    for (uint8_t& b : data) b = b == 0x80 ? 0x81 : b;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    for (int off : c.fp16_fields) {
      const uint16_t h = _cvtss_sh(scale(rng), _MM_FROUND_TO_NEAREST_INT);
      std::memcpy(data.data() + b * t->block_bytes + off, &h, 2);
    }
  }
  return data;
}

std::vector<float> Gaussian(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

class QuantTypeTest : public ::testing::TestWithParam<TypeCase> {};

TEST_P(QuantTypeTest, DequantizeRowMatchesNaiveReference) {
  const TypeCase& c = GetParam();
  const int64_t rows = 5, cols = 512;
  const std::vector<uint8_t> w = RandomBlocks(c, rows, cols, 7);
  std::vector<float> got(rows * cols);
  quant::FindQuantType(c.type)->dequantize_row(w.data(), got.data(),
                                               rows * cols);
  const std::vector<double> want =
      testing::NaiveDequantize(c.type, w.data(), rows * cols);
  ASSERT_EQ(want.size(), got.size());
  for (int64_t i = 0; i < rows * cols; ++i)
    ASSERT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i]) + 1e-9)
        << "element " << i;
}

TEST_P(QuantTypeTest, QuantizeRowErrorIsSmall) {
  const TypeCase& c = GetParam();
  const quant::QuantType* t = quant::FindQuantType(c.type);
  const int64_t n = 64 * 1024;
  std::vector<float> x = Gaussian(n, 3, 0.02f);
  x[100] = 0.3f;  // an outlier
  std::vector<uint8_t> q(n / t->block_elems * t->block_bytes);
  t->quantize_row(x.data(), q.data(), n);
  const std::vector<double> back =
      testing::NaiveDequantize(c.type, q.data(), n);
  double err = 0, ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    err += (back[i] - x[i]) * (back[i] - x[i]);
    ref += double(x[i]) * x[i];
  }
  const double rel = std::sqrt(err / ref);
  std::cout << TypeName(c.type) << ": relative RMS quantization error " << rel
            << "\n";
  EXPECT_LT(rel, c.max_rel_rms);
  // An all-zero row stays zero.
  std::vector<float> zeros(t->block_elems, 0.0f);
  std::vector<uint8_t> zq(t->block_bytes);
  t->quantize_row(zeros.data(), zq.data(), t->block_elems);
  for (double v : testing::NaiveDequantize(c.type, zq.data(), t->block_elems))
    EXPECT_EQ(v, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantTypeTest, ::testing::ValuesIn(Types()),
                         [](const auto& info) {
                           return TypeName(info.param.type);
                         });

struct Shape {
  int64_t M, K, N;
};

// Activations quantized both ways, as Linear's scratch holds them: per 32
// values, and per 256 where K allows (the Q4_K/Q6_K tile kernel reads
// those).
struct TestActs {
  std::vector<int8_t> q, q256;
  std::vector<float> d4, s16, s32, d256;
  std::vector<int16_t> b16, b32;
  std::vector<int32_t> z32;
  quant::QuantizedActs acts;
  int64_t K;

  TestActs(const std::vector<float>& x, int64_t M, int64_t K_)
      : q(M * K_),
        d4(M * K_ / 4),
        s16(M * K_ / 16),
        s32(M * K_ / 32),
        z32(M * K_ / 32),
        K(K_) {
    quant::QuantizeActivations(x.data(), M, K, q.data(), d4.data(), s16.data(),
                               s32.data(), z32.data());
    acts = {q.data(), d4.data(), s16.data(), s32.data(), z32.data()};
    if (K % 256 != 0) return;
    q256.resize(M * K);
    d256.resize(M * K / 256);
    b16.resize(M * K / 16);
    b32.resize(M * K / 32);
    quant::QuantizeActivationsPerSpan(x.data(), M, K, q256.data(), d256.data(),
                                      b16.data(), b32.data());
    acts.q256 = q256.data();
    acts.d256 = d256.data();
    acts.bsum16 = b16.data();
    acts.bsum32 = b32.data();
  }
  TestActs(const TestActs&) = delete;  // acts points into the vectors
  quant::QuantizedActs From(int64_t m0) const {
    return quant::ActsFrom(acts, m0, K);
  }
};

// A NaN or an infinity among the activations spoils only its own 32-block:
// every other block of the row, and the other rows, quantize as before
// (under UBSan this also checks that the integer sums wrap instead of
// overflowing).
TEST(QuantizeActivationsTest, NonFiniteValuesSpoilOnlyTheirBlock) {
  constexpr int64_t kM = 2, kK = 96;
  const std::vector<float> x = Gaussian(kM * kK, 41, 1.0f);
  std::vector<float> bad = x;
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  bad[40] = std::numeric_limits<float>::infinity();
  bad[41] = -std::numeric_limits<float>::infinity();
  const TestActs want(x, kM, kK), got(bad, kM, kK);
  for (int64_t m = 0; m < kM; ++m) {
    for (int64_t b = 0; b < kK / 32; ++b) {
      if (m == 0 && b < 2) continue;  // the spoiled blocks
      const int64_t block = m * (kK / 32) + b;
      EXPECT_EQ(got.z32[block], want.z32[block])
          << "row " << m << " block " << b;
      EXPECT_EQ(got.s32[block], want.s32[block])
          << "row " << m << " block " << b;
      for (int64_t k = 32 * b; k < 32 * b + 32; ++k)
        ASSERT_EQ(got.q[m * kK + k], want.q[m * kK + k]) << "row " << m;
    }
  }
}

// sum_k w[n, k] x[m, k] and its bound (2e-6 of the sum of |products|).
void NaiveProducts(const std::vector<double>& wd, const std::vector<double>& xq,
                   int64_t M, int64_t K, int64_t N, std::vector<double>* want,
                   std::vector<double>* bound) {
  want->assign(M * N, 0.0);
  bound->assign(M * N, 0.0);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double s = 0, a = 0;
      for (int64_t k = 0; k < K; ++k) {
        s += wd[n * K + k] * xq[m * K + k];
        a += std::fabs(wd[n * K + k] * xq[m * K + k]);
      }
      (*want)[m * N + n] = s;
      (*bound)[m * N + n] = 2e-6 * a + 1e-7;
    }
  }
}

// The packed kernel of each ISA (AVX2 row dots, AVX-512 panel) against the
// naive dot of dequantized weights with quantized activations; rows alone
// equal rows in a batch, bit for bit.
class PackedKernelTest : public ::testing::TestWithParam<
                             std::tuple<TypeCase, Shape, SmallGemmIsa>> {
 protected:
  void SetUp() override {
    if (!kernels::SetSmallGemmIsa(std::get<2>(GetParam())))
      GTEST_SKIP() << "this CPU lacks AVX-512 F/BW/VL/VNNI";
  }
  void TearDown() override {
    kernels::SetSmallGemmIsa(kernels::DetectSmallGemmIsa());
  }
};

TEST_P(PackedKernelTest, KernelsMatchNaiveDot) {
  const TypeCase& c = std::get<0>(GetParam());
  const auto [M, K, N] = std::get<1>(GetParam());
  const quant::QuantType* t = quant::FindQuantType(c.type);
  if (K % t->block_elems != 0) GTEST_SKIP() << "K not a whole number of blocks";
  const std::vector<uint8_t> w = RandomBlocks(c, N, K, 11);
  std::vector<float> x = Gaussian(M * K, 13, 1.0f);
  x[0] = 9.0f;  // an activation outlier
  const std::vector<double> wd =
      testing::NaiveDequantize(c.type, w.data(), N * K);
  std::vector<double> want, bound;
  NaiveProducts(wd, testing::NaiveQuantizeActivations(x), M, K, N, &want,
                &bound);
  // The kernel alone, into a wider output (ldy > N).
  const int64_t ldy = N + 3;
  const TestActs acts(x, M, K);
  kernels::LinearScratch scratch;
  scratch.Reserve(M, K);
  const uint32_t type = static_cast<uint32_t>(c.type);
  auto expect_near = [&, M = M, N = N](const std::vector<float>& y,
                                       const std::vector<double>& want,
                                       const std::vector<double>& bound,
                                       const char* what) {
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n)
        ASSERT_NEAR(y[m * ldy + n], want[m * N + n], bound[m * N + n])
            << what << " m=" << m << " n=" << n;
      for (int64_t n = N; n < ldy; ++n) ASSERT_EQ(y[m * ldy + n], -1.0f);
    }
  };
  std::vector<float> y(M * ldy, -1.0f);
  quant::PackedMatmul(type, acts.acts, M, K, w.data(), N, y.data(), ldy,
                      scratch.panel_base(), scratch.panel_slots(K),
                      /*interleaved=*/false);
  expect_near(y, want, bound, "rows");
  // Row-interleaved weights (the engine's order where the AVX-512 kernels
  // run) give the same bits, or for Q4_K/Q6_K tiles, whose kernel reads the
  // activations quantized per 256 values, the products with those.
  std::vector<uint8_t> wi;
  std::vector<float> yi;
  if (quant::InterleaveWanted(K)) {
    wi = w;
    quant::InterleaveRows(type, wi.data(), N, K, quant::RowBytes(*t, K));
    // One span per row keeps the same order, except in tiles (reordered
    // inside the span).
    if (K > 256 || quant::TiledType(type)) {
      ASSERT_NE(wi, w);
    }
    yi.assign(M * ldy, -1.0f);
    quant::PackedMatmul(type, acts.acts, M, K, wi.data(), N, yi.data(), ldy,
                        scratch.panel_base(), scratch.panel_slots(K),
                        /*interleaved=*/true);
    if (quant::ReadsSpanActivations(type, /*interleaved=*/true)) {
      std::vector<double> want_span, bound_span;
      NaiveProducts(wd, testing::NaiveQuantizeActivationsPerSpan(x), M, K, N,
                    &want_span, &bound_span);
      expect_near(yi, want_span, bound_span, "tiles");
    } else {
      ASSERT_EQ(yi, y);
    }
  }
  // Batch invariance: each row alone gives bit-identical results.
  for (int64_t m = 0; m < M; ++m) {
    std::vector<float> alone(N);
    quant::PackedMatmul(type, acts.From(m), 1, K, w.data(), N, alone.data(), N,
                        scratch.panel_base(), scratch.panel_slots(K),
                        /*interleaved=*/false);
    for (int64_t n = 0; n < N; ++n)
      ASSERT_EQ(alone[n], y[m * ldy + n]) << "row " << m << " alone, n=" << n;
    if (wi.empty()) continue;
    quant::PackedMatmul(type, acts.From(m), 1, K, wi.data(), N, alone.data(), N,
                        scratch.panel_base(), scratch.panel_slots(K),
                        /*interleaved=*/true);
    for (int64_t n = 0; n < N; ++n) {
      ASSERT_EQ(alone[n], yi[m * ldy + n])
          << "row " << m << " alone, interleaved, n=" << n;
    }
  }
}

// A Linear of two parts (this type, then Q6_K or Q8_0 rows) with a bias,
// whatever kernel choice is forced: the fused qkv of a Q4_K_M file has this
// shape.
TEST_P(PackedKernelTest, MixedLinearAgreesAcrossKernels) {
  const TypeCase& c = std::get<0>(GetParam());
  const auto [M, K, N] = std::get<1>(GetParam());
  const quant::QuantType* t = quant::FindQuantType(c.type);
  const TypeCase& other =
      K % 256 == 0 ? Types()[9] : Types()[4];  // q6_K / q8_0
  if (K % t->block_elems != 0) GTEST_SKIP() << "K not a whole number of blocks";
  std::vector<kernels::PackedPart> parts(2);
  parts[0] = {
      c.type, N, *PageArray<uint8_t>::CopyOf(RandomBlocks(c, N, K, 17)), {}};
  parts[1] = {other.type,
              5,
              *PageArray<uint8_t>::CopyOf(RandomBlocks(other, 5, K, 19)),
              {}};
  const std::vector<double> w0 =
      testing::NaiveDequantize(c.type, parts[0].data.data(), N * K);
  const std::vector<double> w1 =
      testing::NaiveDequantize(other.type, parts[1].data.data(), 5 * K);
  const std::vector<float> bias = Gaussian(N + 5, 23, 1.0f);
  auto lin = kernels::Linear::CreatePacked(K, std::move(parts), bias);
  ASSERT_TRUE(lin.ok()) << lin.status();
  const std::vector<float> x = Gaussian(M * K, 29, 1.0f);
  // Each part's kernel quantizes the activations its own way (Q4_K/Q6_K
  // tiles per 256 values, the rest per 32).
  const std::vector<double> xq32 = testing::NaiveQuantizeActivations(x);
  const std::vector<double> xq256 =
      K % 256 == 0 ? testing::NaiveQuantizeActivationsPerSpan(x) : xq32;
  const bool interleaved = quant::InterleaveWanted(K);
  auto acts_of = [&](GgmlType type) -> const std::vector<double>& {
    return quant::ReadsSpanActivations(static_cast<uint32_t>(type), interleaved)
               ? xq256
               : xq32;
  };
  kernels::LinearScratch scratch;
  scratch.Reserve(M, K);
  for (bool large : {false, true}) {
    (*lin)->ForceKernel(large);
    std::vector<float> y(M * (N + 5));
    ASSERT_TRUE((*lin)->Forward(x.data(), M, y.data(), &scratch).ok());
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N + 5; ++n) {
        const std::vector<double>& w = n < N ? w0 : w1;
        const std::vector<double>& xq = acts_of(n < N ? c.type : other.type);
        const int64_t row = n < N ? n : n - N;
        double s = bias[n], a = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double xv = xq[m * K + k];
          s += w[row * K + k] * xv;
          a += std::fabs(w[row * K + k] * xv);
        }
        ASSERT_NEAR(y[m * (N + 5) + n], s, 2e-6 * a + 1e-5)
            << (large ? "large" : "small") << " m=" << m << " n=" << n;
      }
    }
  }
  // Token embeddings read rows this way (interleaved rows too, the short
  // last tile of each part among them).
  std::vector<float> row(K);
  for (int64_t n = 0; n < N + 5; ++n) {
    (*lin)->DequantizeRow(n, row.data());
    const double* want = n < N ? &w0[n * K] : &w1[(n - N) * K];
    for (int64_t k = 0; k < K; ++k)
      ASSERT_NEAR(row[k], want[k], 1e-6) << "row " << n << " k=" << k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PackedKernelTest,
    ::testing::Combine(
        ::testing::ValuesIn(Types()),
        ::testing::Values(Shape{1, 256, 8}, Shape{3, 512, 37},
                          Shape{5, 768, 17}, Shape{17, 256, 33},
                          Shape{8, 1024, 20}, Shape{2, 96, 9}, Shape{33, 32, 4},
                          Shape{40, 768, 256}, Shape{24, 256, 1536},
                          Shape{20, 256, 512},
                          // 8 rows and a rest (Q4_K, Q6_K: the tile kernel
                          // up to 16 rows, short last tiles).
                          Shape{12, 768, 37}, Shape{16, 512, 37},
                          // 7 rows (direct), and 8 + 8 + 7 (panel).
                          Shape{7, 256, 37}, Shape{23, 512, 37},
                          // Two passes of the panel over the weights (128
                          // rows, then 9).
                          Shape{137, 512, 21},
                          // Whole 256-spans plus a scattered tail (32-value
                          // types only), at one row and at a panel.
                          Shape{1, 288, 19}, Shape{6, 800, 21}),
        ::testing::Values(SmallGemmIsa::kAvx2, SmallGemmIsa::kAvx512)),
    [](const auto& info) {
      const Shape s = std::get<1>(info.param);
      return absl::StrCat(
          TypeName(std::get<0>(info.param).type), "_M", s.M, "_K", s.K, "_N",
          s.N,
          std::get<2>(info.param) == SmallGemmIsa::kAvx2 ? "_avx2" : "_avx512");
    });

// Decode runs 1-4 activation rows (tiles: 1-16) through a direct kernel and
// larger steps through the panel (AVX-512): every row of a 24-row step must
// equal, bit for bit, the same row run in a step of 1, 2, 3, 4, 6 or 16 rows
// (batch invariance across the kernel switch), with a partial last tile of
// weight rows; and the panel forced at every M (PackedPanelGemm) gives the
// same bits as the kernel PackedMatmul picks.
class PackedSmallMTest
    : public ::testing::TestWithParam<std::tuple<TypeCase, SmallGemmIsa>> {
 protected:
  void SetUp() override {
    if (!kernels::SetSmallGemmIsa(std::get<1>(GetParam())))
      GTEST_SKIP() << "this CPU lacks AVX-512 F/BW/VL/VNNI";
  }
  void TearDown() override {
    kernels::SetSmallGemmIsa(kernels::DetectSmallGemmIsa());
  }
};

TEST_P(PackedSmallMTest, SmallStepsEqualRowsOfALargeStep) {
  const TypeCase& c = std::get<0>(GetParam());
  constexpr int64_t kM = 24, kN = 37;
  for (const int64_t K : {256, 768}) {
    const std::vector<uint8_t> w = RandomBlocks(c, kN, K, 31);
    const std::vector<float> x = Gaussian(kM * K, 37, 1.0f);
    const TestActs acts(x, kM, K);
    kernels::LinearScratch scratch;
    scratch.Reserve(kM, K);
    const uint32_t type = static_cast<uint32_t>(c.type);
    std::vector<uint8_t> wi = w;
    quant::InterleaveRows(type, wi.data(), kN, K,
                          quant::RowBytes(*quant::FindQuantType(c.type), K));
    // Each layout the kernels read (interleaved only where wanted) gives
    // every step that layout's large step's bits.
    for (const bool interleaved : {false, true}) {
      if (interleaved && !quant::InterleaveWanted(K)) continue;
      const std::vector<uint8_t>& wl = interleaved ? wi : w;
      std::vector<float> big(kM * kN);
      quant::PackedMatmul(type, acts.acts, kM, K, wl.data(), kN, big.data(), kN,
                          scratch.panel_base(), scratch.panel_slots(K),
                          interleaved);
      for (const int64_t step : {1, 2, 3, 4, 6, 16}) {
        for (int64_t m0 = 0; m0 + step <= kM; m0 += step) {
          std::vector<float> small(step * kN, -1.0f);
          quant::PackedMatmul(type, acts.From(m0), step, K, wl.data(), kN,
                              small.data(), kN, scratch.panel_base(),
                              scratch.panel_slots(K), interleaved);
          for (int64_t i = 0; i < step * kN; ++i) {
            ASSERT_EQ(small[i], big[m0 * kN + i])
                << "K=" << K << " step " << step << " row " << m0 + i / kN
                << " n=" << i % kN << (interleaved ? " interleaved" : "");
          }
          if (std::get<1>(GetParam()) != SmallGemmIsa::kAvx512) continue;
          std::vector<float> panel(step * kN, -1.0f);
          quant::avx512::PackedPanelGemm(
              type, acts.From(m0), step, K, wl.data(), kN, panel.data(), kN,
              scratch.panel_base(), scratch.panel_slots(K), interleaved);
          for (int64_t i = 0; i < step * kN; ++i) {
            ASSERT_EQ(panel[i], big[m0 * kN + i])
                << "K=" << K << " panel, step " << step << " row "
                << m0 + i / kN << " n=" << i % kN
                << (interleaved ? " interleaved" : "");
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Types, PackedSmallMTest,
    ::testing::Combine(::testing::ValuesIn(Types()),
                       ::testing::Values(SmallGemmIsa::kAvx2,
                                         SmallGemmIsa::kAvx512)),
    [](const auto& info) {
      return absl::StrCat(
          TypeName(std::get<0>(info.param).type),
          std::get<1>(info.param) == SmallGemmIsa::kAvx2 ? "_avx2" : "_avx512");
    });

// InterleaveRows moves whole spans (Q4_K, Q6_K, Q8_0: reorders them inside,
// into tiles); CopyInterleavedSpan gives each back in GGUF order, in full tiles
// and in the short last one.
class InterleaveRowsTest : public ::testing::TestWithParam<TypeCase> {};

TEST_P(InterleaveRowsTest, EverySpanIsFoundWhereItWasMoved) {
  const TypeCase& c = GetParam();
  const quant::QuantType* t = quant::FindQuantType(c.type);
  constexpr int64_t kN = 37, kK = 768;
  const int64_t row_bytes = quant::RowBytes(*t, kK), span_bytes = row_bytes / 3;
  std::vector<uint8_t> natural(kN * row_bytes);
  for (size_t i = 0; i < natural.size(); ++i)
    natural[i] = static_cast<uint8_t>(i * 131 + i / 251);
  std::vector<uint8_t> interleaved = natural;
  const uint32_t type = static_cast<uint32_t>(c.type);
  quant::InterleaveRows(type, interleaved.data(), kN, kK, row_bytes);
  ASSERT_EQ(interleaved.size(), natural.size());
  if (!quant::TiledType(type)) {
    // Tile 0: span 0 of rows 0..15, then span 1 of row 0.
    EXPECT_EQ(0, std::memcmp(interleaved.data() + span_bytes,
                             natural.data() + row_bytes, span_bytes));
    EXPECT_EQ(0, std::memcmp(interleaved.data() + 16 * span_bytes,
                             natural.data() + span_bytes, span_bytes));
  } else {
    EXPECT_NE(interleaved, natural);  // reordered inside the spans too
  }
  std::vector<uint8_t> got(span_bytes);
  for (int64_t n = 0; n < kN; ++n) {
    for (int64_t s = 0; s < 3; ++s) {
      quant::CopyInterleavedSpan(type, interleaved.data(), kN, kK, row_bytes, n,
                                 s, got.data());
      ASSERT_EQ(0, std::memcmp(got.data(),
                               natural.data() + n * row_bytes + s * span_bytes,
                               span_bytes))
          << "row " << n << " span " << s;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, InterleaveRowsTest,
                         ::testing::ValuesIn(Types()), [](const auto& info) {
                           return std::string(TypeName(info.param.type));
                         });

}  // namespace
}  // namespace lumen::engine
