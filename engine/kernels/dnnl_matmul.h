#pragma once
// The one file that talks to oneDNN (2.6, 2.x API). oneDNN throws
// dnnl::error; everything is caught here and returned as absl::Status.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace lumen::engine::kernels {

// y[M,N] = x[M,K] * W[N,K]^T (+ bias[N]) in fp32 with a runtime-M oneDNN
// matmul primitive created once per weight shape. The weights are given per
// call, so int8 layers can pass a freshly dequantized copy. Run may be called
// from several threads at once (the engine thread and the embedding lanes),
// and on other threads than the one that created it: each thread executes
// on its own oneDNN stream with its own scratchpad.
class DnnlMatmulF32 {
 public:
  // `bias` ([N]) may be null and must outlive this object. The first matrix
  // of each (K, N, bias) shape in the process runs one warm-up call, so that
  // the JIT compiles now rather than on the first request.
  static absl::StatusOr<std::unique_ptr<DnnlMatmulF32>> Create(
      int64_t K, int64_t N, const float* bias);
  ~DnnlMatmulF32();

  // x: [M, K], w: [N, K] row-major (GGUF layout), y: [M, N].
  absl::Status Run(const float* x, int64_t M, const float* w, float* y) const;

 private:
  struct Impl;
  explicit DnnlMatmulF32(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lumen::engine::kernels
