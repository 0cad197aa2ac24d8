#include "engine/model/weight_loader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/prefault.h"
#include "base/status_macros.h"
#include "engine/gguf/tensor_convert.h"
#include "engine/quant/quant_type.h"

namespace lumen::engine {

namespace {

bool FloatType(GgmlType t) {
  return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16;
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

// The packed blocks of p, read from the file.
absl::StatusOr<PageArray<uint8_t>> ReadBlocks(const GgufFile& f,
                                              const MatrixRows& p) {
  const quant::QuantType* t = quant::FindQuantType(p.tensor->type);
  ASSIGN_OR_RETURN(
      PageArray<uint8_t> blocks,
      PageArray<uint8_t>::Zeros(p.rows * quant::RowBytes(*t, p.cols())));
  RETURN_IF_ERROR(f.ReadTensorBytes(
      *p.tensor, ByteOffset(p.tensor->type, p.first_row * p.cols()),
      blocks.span()));
  return blocks;
}

absl::StatusOr<std::unique_ptr<kernels::Linear>> AsF32(
    const GgufFile& f, const std::vector<MatrixRows>& parts, int64_t rows,
    std::vector<float> bias,
    kernels::InputRounding rounding = kernels::InputRounding::kNone) {
  const int64_t cols = parts[0].cols();
  // Rows [first, first + count) of the stacked parts, decoded straight from
  // the file into the layout Linear keeps (no row-major copy of the matrix).
  auto decode = [&](int64_t first, int64_t count, float* out) {
    int64_t part_first = 0;  // the part's first row in the stack
    for (const MatrixRows& p : parts) {
      const int64_t lo = std::max(first, part_first);
      const int64_t hi = std::min(first + count, part_first + p.rows);
      if (lo < hi) {
        RETURN_IF_ERROR(
            DecodeRows(f, {p.tensor, p.first_row + lo - part_first, hi - lo},
                       out + (lo - first) * cols));
      }
      part_first += p.rows;
    }
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(
      std::unique_ptr<kernels::Linear> linear,
      kernels::Linear::CreateF32FromRows(rows, cols, decode, std::move(bias)));
  RETURN_IF_ERROR(linear->SetInputRounding(rounding));
  return linear;
}

// Packed parts keep their blocks; float parts become fp32 rows (auto) or
// Q8_0 blocks (int8).
absl::StatusOr<std::unique_ptr<kernels::Linear>> AsPacked(
    const GgufFile& f, const std::vector<MatrixRows>& parts,
    std::vector<float> bias, WeightMode mode) {
  const int64_t cols = parts[0].cols();
  std::vector<kernels::PackedPart> packed;
  for (const MatrixRows& p : parts) {
    kernels::PackedPart part;
    part.rows = p.rows;
    if (!FloatType(p.tensor->type)) {
      part.type = p.tensor->type;
      ASSIGN_OR_RETURN(part.data, ReadBlocks(f, p));
    } else {
      ASSIGN_OR_RETURN(std::vector<float> w, ReadFloats(f, p));
      if (mode == WeightMode::kInt8 && cols % kQ8_0BlockSize == 0) {
        const quant::QuantType* q8 = quant::FindQuantType(GgmlType::kQ8_0);
        part.type = GgmlType::kQ8_0;
        ASSIGN_OR_RETURN(part.data, PageArray<uint8_t>::Zeros(
                                        p.rows * quant::RowBytes(*q8, cols)));
        q8->quantize_row(w.data(), part.data.data(), p.rows * cols);
      } else {
        part.type = GgmlType::kF32;
        part.f32 = std::move(w);
      }
    }
    packed.push_back(std::move(part));
  }
  return kernels::Linear::CreatePacked(cols, std::move(packed),
                                       std::move(bias));
}

}  // namespace

absl::StatusOr<WeightMode> ParseWeightMode(absl::string_view s) {
  if (s == "auto") return WeightMode::kAuto;
  if (s == "f32") return WeightMode::kF32;
  if (s == "int8") return WeightMode::kInt8;
  return absl::InvalidArgumentError(
      absl::StrCat("weights '", s, "' is not one of auto, f32, int8"));
}

bool LoadableType(GgmlType t) {
  return FloatType(t) || quant::FindQuantType(t) != nullptr;
}

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
                     "; supported types: ", quant::SupportedTypeList()));
  }
  if (t->dims != dims) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " has shape ", Shape(t->dims),
                     ", expected ", Shape(dims)));
  }
  return t;
}

absl::Status DecodeRows(const GgufFile& f, const MatrixRows& m, float* out) {
  const GgmlType type = m.tensor->type;
  const int64_t cols = m.cols();
  const int64_t start = ByteOffset(type, m.first_row * cols);
  const int64_t row_bytes = ByteOffset(type, cols);
  if (type == GgmlType::kF32) {  // the file's bytes are the values
    return f.ReadTensorBytes(
        *m.tensor, start,
        {reinterpret_cast<uint8_t*>(out),
         static_cast<size_t>(m.rows * cols) * sizeof(float)});
  }
  // Other types through a buffer of at most ~1 MiB of whole rows.
  const int64_t chunk_rows =
      std::clamp<int64_t>((1 << 20) / std::max<int64_t>(row_bytes, 1), 1,
                          std::max<int64_t>(m.rows, 1));
  std::vector<uint8_t> bytes(chunk_rows * row_bytes);
  for (int64_t r = 0; r < m.rows; r += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, m.rows - r);
    const std::span<uint8_t> chunk(bytes.data(), rows * row_bytes);
    RETURN_IF_ERROR(f.ReadTensorBytes(*m.tensor, start + r * row_bytes, chunk));
    RETURN_IF_ERROR(
        DecodeToFloat(type, chunk.data(), rows * cols, out + r * cols));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> ReadFloats(const GgufFile& f,
                                              const MatrixRows& m) {
  std::vector<float> out;
  ReservePrefaulted(out, m.rows * m.cols());
  out.resize(m.rows * m.cols());
  RETURN_IF_ERROR(DecodeRows(f, m, out.data()));
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
    std::vector<float> bias, WeightMode mode) {
  const int64_t cols = parts[0].cols();
  int64_t rows = 0;
  bool all_float = true, all_f16 = true, all_bf16 = true;
  for (const MatrixRows& p : parts) {
    rows += p.rows;
    all_float &= FloatType(p.tensor->type);
    all_f16 &= p.tensor->type == GgmlType::kF16;
    all_bf16 &= p.tensor->type == GgmlType::kBF16;
  }
  if (mode == WeightMode::kF32) return AsF32(f, parts, rows, std::move(bias));
  // Float matrices quantized at load (--weights int8) become Q8_0 blocks
  // on the packed kernels: VNNI dot products at every M, which prefilled
  // 1.6-1.9x faster than the int8 kernels they replaced (README,
  // "--weights"). Otherwise F16/BF16 matrices round their inputs as
  // llama.cpp does (kernels::InputRounding).
  if (all_float && (mode != WeightMode::kInt8 || cols % kQ8_0BlockSize != 0)) {
    return AsF32(f, parts, rows, std::move(bias),
                 all_f16    ? kernels::InputRounding::kF16
                 : all_bf16 ? kernels::InputRounding::kBF16
                            : kernels::InputRounding::kNone);
  }
  return AsPacked(f, parts, std::move(bias), mode);
}

}  // namespace lumen::engine
