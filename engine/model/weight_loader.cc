#include "engine/model/weight_loader.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/tensor_convert.h"
#include "engine/kernels/quantize.h"

namespace lumen::engine {

namespace {

bool LoadableType(GgmlType t) {
  return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16 ||
         t == GgmlType::kQ8_0;
}

std::string Shape(const std::vector<int64_t>& dims) {
  std::string s;
  for (int64_t d : dims) absl::StrAppend(&s, s.empty() ? "" : " x ", d);
  return absl::StrCat("[", s, "]");
}

// Bytes from the start of the tensor to its element `index` (a block
// boundary for block types).
int64_t ByteOffset(GgmlType type, int64_t index) {
  const auto traits = GgmlTypeTraitsOf(static_cast<uint32_t>(type));
  return index / traits->block_size * traits->type_size;
}

}  // namespace

MatrixRows WholeMatrix(const GgufTensorInfo* t) {
  return {t, 0, t->dims.size() > 1 ? t->dims[1] : 1};
}

MatrixRows ExpertSlice(const GgufTensorInfo* t, int64_t expert) {
  return {t, expert * t->dims[1], t->dims[1]};
}

absl::StatusOr<const GgufTensorInfo*> FindWeight(const GgufFile& f,
                                                 const std::string& name,
                                                 std::vector<int64_t> dims) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " is missing"));
  }
  if (!LoadableType(t->type)) {
    return absl::UnimplementedError(
        absl::StrCat("tensor ", name, " has type ", GgmlTypeName(t->type),
                     "; supported types: f32, f16, bf16, q8_0"));
  }
  if (t->dims != dims) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " has shape ", Shape(t->dims),
                     ", expected ", Shape(dims)));
  }
  return t;
}

absl::StatusOr<std::vector<float>> ReadFloats(const GgufFile& f,
                                              const MatrixRows& m) {
  const int64_t first = m.first_row * m.cols(), n = m.rows * m.cols();
  std::vector<float> out(n);
  RETURN_IF_ERROR(DecodeToFloat(
      m.tensor->type,
      f.TensorData(*m.tensor).data() + ByteOffset(m.tensor->type, first), n,
      out.data()));
  return out;
}

absl::StatusOr<std::vector<float>> ReadVector(const GgufFile& f,
                                              const std::string& name,
                                              int64_t n) {
  ASSIGN_OR_RETURN(const GgufTensorInfo* t, FindWeight(f, name, {n}));
  return ReadFloats(f, WholeMatrix(t));
}

absl::StatusOr<std::unique_ptr<kernels::Linear>> MakeLinear(
    const GgufFile& f, const std::vector<MatrixRows>& parts,
    std::vector<float> bias, bool int8) {
  const int64_t cols = parts[0].cols();
  int64_t rows = 0;
  for (const MatrixRows& p : parts) rows += p.rows;
  if (int8 && cols % kernels::kQBlock == 0) {
    std::vector<int8_t> q(rows * cols);
    std::vector<float> scales(rows * cols / kernels::kQBlock);
    int64_t row = 0;
    for (const MatrixRows& p : parts) {
      if (p.tensor->type == GgmlType::kQ8_0) {
        const uint8_t* src = f.TensorData(*p.tensor).data() +
                             ByteOffset(GgmlType::kQ8_0, p.first_row * cols);
        const int64_t blocks = p.rows * cols / kQ8_0BlockSize;
        for (int64_t b = 0; b < blocks; ++b) {
          BlockQ8_0 block;
          std::memcpy(&block, src + b * sizeof(BlockQ8_0), sizeof(block));
          scales[row * cols / kernels::kQBlock + b] = HalfToFloat(block.scale);
          int8_t* dst = q.data() + row * cols + b * kQ8_0BlockSize;
          std::memcpy(dst, block.q, kQ8_0BlockSize);
          // Q8_0 may hold -128; clamp to keep vpmaddubsw's pair sums exact.
          for (int i = 0; i < kQ8_0BlockSize; ++i) {
            if (dst[i] == -128) dst[i] = -127;
          }
        }
      } else {
        ASSIGN_OR_RETURN(std::vector<float> w, ReadFloats(f, p));
        kernels::QuantizeRowsQ8(w.data(), p.rows, cols, q.data() + row * cols,
                                scales.data() + row * cols / kernels::kQBlock);
      }
      row += p.rows;
    }
    return kernels::Linear::CreateInt8(rows, cols, std::move(q),
                                       std::move(scales), std::move(bias));
  }
  std::vector<float> w;
  w.reserve(rows * cols);
  for (const MatrixRows& p : parts) {
    ASSIGN_OR_RETURN(std::vector<float> part, ReadFloats(f, p));
    w.insert(w.end(), part.begin(), part.end());
  }
  return kernels::Linear::CreateF32(rows, cols, std::move(w), std::move(bias));
}

}  // namespace lumen::engine
