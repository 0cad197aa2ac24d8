#pragma once
// Reading model weights out of a GGUF file: shape-checked tensor lookup,
// conversion to fp32, and building Linear layers (fp32, or int8 with Q8_0
// blocks taken as they are) from whole matrices or from one expert's slice
// of a 3-D expert tensor.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/linear.h"

namespace lumen::engine {

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

// The tensor `name` with exactly `dims` (ggml order). InvalidArgument when
// missing or of another shape; Unimplemented for types other than
// F32/F16/BF16/Q8_0, naming the tensor and its type.
absl::StatusOr<const GgufTensorInfo*> FindWeight(const GgufFile& f,
                                                 const std::string& name,
                                                 std::vector<int64_t> dims);

absl::StatusOr<std::vector<float>> ReadFloats(const GgufFile& f,
                                              const MatrixRows& m);
// A 1-D tensor of n values.
absl::StatusOr<std::vector<float>> ReadVector(const GgufFile& f,
                                              const std::string& name,
                                              int64_t n);

// Stacks the rows of `parts` (same column count) into one Linear: int8
// 32-blocks when `int8` and the width allows it, fp32 otherwise.
absl::StatusOr<std::unique_ptr<kernels::Linear>> MakeLinear(
    const GgufFile& f, const std::vector<MatrixRows>& parts,
    std::vector<float> bias, bool int8);

}  // namespace lumen::engine
