// Loading matrices out of a GGUF file: parts of any row count stacked into
// one Linear (fp32 panels fill 16 rows at a time, so tiles straddle parts),
// types decoded through a staging buffer in chunks, and a file cut short
// after opening.

#include "engine/model/weight_loader.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/gguf/tensor_convert.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/quant/quant_type.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

using ::testing::HasSubstr;

// Values exact in f16: v(row, col) for a tensor seeded `seed`. No part is a
// row-shifted copy of another (the seed multiplies).
float Value(int seed, int64_t row, int64_t col) {
  return static_cast<float>(((seed + 1) * (row * 17 + col * 5 + 3)) % 97 - 48) /
         8;
}

std::vector<uint8_t> Bytes(GgmlType type, int seed, int64_t rows,
                           int64_t cols) {
  std::vector<uint8_t> out;
  if (type == GgmlType::kQ8_0) {
    std::vector<float> values;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) values.push_back(Value(seed, r, c));
    const quant::QuantType* q8 = quant::FindQuantType(GgmlType::kQ8_0);
    out.resize(rows * quant::RowBytes(*q8, cols));
    q8->quantize_row(values.data(), out.data(), rows * cols);
    return out;
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float v = Value(seed, r, c);
      if (type == GgmlType::kF32) {
        const auto* b = reinterpret_cast<const uint8_t*>(&v);
        out.insert(out.end(), b, b + 4);
      } else {
        const uint16_t h = FloatToHalf(v);
        out.push_back(static_cast<uint8_t>(h & 0xff));
        out.push_back(static_cast<uint8_t>(h >> 8));
      }
    }
  }
  return out;
}

struct Part {
  const char* name;
  GgmlType type;
  int64_t rows;
};

std::string WriteParts(const std::vector<Part>& parts, int64_t cols) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  int seed = 0;
  for (const Part& p : parts) {
    EXPECT_TRUE(w.AddTensor(p.name, p.type, {cols, p.rows},
                            Bytes(p.type, seed++, p.rows, cols))
                    .ok());
  }
  const std::string path = testing::MakeTempDir() + "/parts.gguf";
  EXPECT_TRUE(w.Write(path).ok());
  return path;
}

// On every kernel variant: AVX-512 fills fp32 panels 16 rows at a time, so
// its tiles straddle the parts; AVX2 reads the rows in one call.
TEST(WeightLoaderTest, StacksPartsOfAnyRowCountExactly) {
  constexpr int64_t K = 64;
  const std::vector<Part> parts = {{"a", GgmlType::kF32, 5},
                                   {"b", GgmlType::kF16, 21},
                                   {"c", GgmlType::kF32, 30}};
  auto f = GgufFile::Open(WriteParts(parts, K));
  ASSERT_TRUE(f.ok()) << f.status();
  std::vector<MatrixRows> rows;
  for (const Part& p : parts)
    rows.push_back(WholeMatrix((*f)->FindTensor(p.name)));
  for (auto isa :
       {kernels::SmallGemmIsa::kAvx2, kernels::SmallGemmIsa::kAvx512}) {
    kernels::ScopedSmallGemmIsa scoped(isa);
    if (!scoped.ok()) continue;  // no AVX-512 here
    auto linear = MakeLinear(**f, rows, {}, WeightMode::kF32);
    ASSERT_TRUE(linear.ok()) << linear.status();
    ASSERT_EQ((*linear)->rows(), 56);
    EXPECT_EQ((*linear)->f32_panel(), isa == kernels::SmallGemmIsa::kAvx512);
    std::vector<float> row(K);
    int64_t stacked = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      for (int64_t r = 0; r < parts[i].rows; ++r, ++stacked) {
        (*linear)->DequantizeRow(stacked, row.data());
        for (int64_t c = 0; c < K; ++c) {
          ASSERT_EQ(row[c], Value(static_cast<int>(i), r, c))
              << "panels " << (*linear)->f32_panel() << ", part "
              << parts[i].name << ", row " << r << ", col " << c;
        }
      }
    }
  }
}

// 1200 rows of 512 f16 values are 1.2 MiB: more than one staging chunk.
TEST(WeightLoaderTest, DecodesRowsAcrossStagingChunks) {
  constexpr int64_t K = 512, N = 1200;
  auto f = GgufFile::Open(WriteParts({{"h", GgmlType::kF16, N}}, K));
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufTensorInfo* t = (*f)->FindTensor("h");
  constexpr int64_t first = 37, count = 1100;
  std::vector<float> out(count * K);
  ASSERT_TRUE(DecodeRows(**f, {t, first, count}, out.data()).ok());
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t c = 0; c < K; ++c) {
      ASSERT_EQ(out[r * K + c], Value(0, first + r, c))
          << "row " << first + r << ", col " << c;
    }
  }
}

TEST(WeightLoaderTest, AFileCutShortIsDataLossNamingTheTensor) {
  constexpr int64_t K = 64;
  const std::string path = WriteParts({{"a", GgmlType::kF32, 40},
                                       {"b", GgmlType::kF16, 40},
                                       {"q", GgmlType::kQ8_0, 40}},
                                      K);
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufTensorInfo* b = (*f)->FindTensor("b");
  const GgufTensorInfo* q = (*f)->FindTensor("q");
  const uint64_t data = (*f)->data_offset();
  // Cut inside the Q8_0 blocks: the packed reader fails, `b` still loads.
  ASSERT_EQ(::truncate(path.c_str(), data + q->offset + 100), 0);
  auto packed = MakeLinear(**f, {WholeMatrix(q)}, {}, WeightMode::kAuto);
  EXPECT_EQ(packed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(packed.status().message(), HasSubstr("tensor 'q'"));
  EXPECT_TRUE(MakeLinear(**f, {WholeMatrix(b)}, {}, WeightMode::kF32).ok());
  // Cut inside the f16 rows: decoded as fp32 rows, and as Q8_0 blocks
  // quantized at load (--weights int8).
  ASSERT_EQ(::truncate(path.c_str(), data + b->offset + 100), 0);
  for (WeightMode mode : {WeightMode::kF32, WeightMode::kInt8}) {
    auto linear = MakeLinear(**f, {WholeMatrix(b)}, {}, mode);
    EXPECT_EQ(linear.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(linear.status().message(), HasSubstr("tensor 'b'"));
  }
  EXPECT_TRUE(MakeLinear(**f, {WholeMatrix((*f)->FindTensor("a"))}, {},
                         WeightMode::kF32)
                  .ok());
}

}  // namespace
}  // namespace lumen::engine
