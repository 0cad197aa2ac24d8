#pragma once
// Reading model weights out of a GGUF file: shape-checked tensor lookup,
// conversion to fp32, and building Linear layers from whole matrices or from
// one expert's slice of a 3-D expert tensor, in the format the weight mode
// asks for (see WeightMode).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/linear.h"

namespace lumen::engine {

// How matrices are held after loading:
//   kAuto: every tensor in its own type: packed types (Q4_K, Q6_K, Q8_0,
//          ...) stay packed, F32/F16/BF16 become fp32. A matrix whose
//          parts are all F16 (all BF16) rounds its inputs to F16 (BF16) as
//          llama.cpp does (kernels::InputRounding); mixed float parts, float
//          rows fused with packed ones, the MoE router (held as kF32) and
//          the BERT encoder do not round.
//   kInt8: as kAuto, but F32/F16/BF16 matrices are quantized to Q8_0 blocks
//          at load (when their width is a multiple of 32) and run packed.
//   kF32:  everything dequantized to fp32 at load.
enum class WeightMode { kAuto, kF32, kInt8 };
// "auto", "f32", "int8"; InvalidArgument otherwise.
absl::StatusOr<WeightMode> ParseWeightMode(absl::string_view s);

// Rows [first_row, first_row + rows) of a tensor seen as a [rows, dims[0]]
// matrix: all of a 2-D tensor, or expert e of a {cols, rows, experts} one.
struct MatrixRows {
  const GgufTensorInfo* tensor = nullptr;
  int64_t first_row = 0;
  int64_t rows = 0;
  int64_t cols() const { return tensor->dims[0]; }
};

MatrixRows WholeMatrix(const GgufTensorInfo* t);
MatrixRows ExpertSlice(const GgufTensorInfo* t, int64_t expert);

// Whether the engine can load tensors of this type (F32/F16/BF16 and the
// packed types of engine/quant).
bool LoadableType(GgmlType type);

// The tensor `name` with exactly `dims` (ggml order). InvalidArgument when
// missing or of another shape; Unimplemented for types the engine cannot
// load, naming the tensor, its type and the supported types.
absl::StatusOr<const GgufTensorInfo*> FindWeight(const GgufFile& f,
                                                 const std::string& name,
                                                 std::vector<int64_t> dims);

absl::StatusOr<std::vector<float>> ReadFloats(const GgufFile& f,
                                              const MatrixRows& m);
// The same into out (m.rows * m.cols() floats), read from the file
// (GgufFile::ReadTensorBytes); on error out is partly written. Safe from
// several threads at once.
absl::Status DecodeRows(const GgufFile& f, const MatrixRows& m, float* out);
// A 1-D tensor of n values.
absl::StatusOr<std::vector<float>> ReadVector(const GgufFile& f,
                                              const std::string& name,
                                              int64_t n);

// Stacks the rows of `parts` (same column count) into one Linear in the
// format `mode` gives them (see WeightMode).
absl::StatusOr<std::unique_ptr<kernels::Linear>> MakeLinear(
    const GgufFile& f, const std::vector<MatrixRows>& parts,
    std::vector<float> bias, WeightMode mode);

}  // namespace lumen::engine
