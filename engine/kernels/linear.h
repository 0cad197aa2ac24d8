#pragma once
// Linear: y[M,N] = x[M,K] * W[N,K]^T + b with W held as fp32 or as int8 in
// 32-blocks. Each call picks the kernel by M: the AVX2 small-M kernels below
// the crossover measured for this shape at load time, oneDNN's GEMM above.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kernels/dnnl_matmul.h"

namespace lumen::engine::kernels {

enum class WeightFormat { kF32, kInt8 };

// Per-call scratch for quantized activations, sized once by the owner.
struct ActivationScratch {
  std::vector<int8_t> q;      // [max_rows * max_k]
  std::vector<float> scales;  // [max_rows * max_k / 32]
  void Reserve(int64_t rows, int64_t max_k);
};

class Linear {
 public:
  // w: [N, K] fp32. bias: [N] or empty.
  static absl::StatusOr<std::unique_ptr<Linear>> CreateF32(
      int64_t N, int64_t K, std::vector<float> w, std::vector<float> bias);
  // q: [N, K] int8 in [-127, 127], scales: [N, K/32]; K % 32 == 0.
  static absl::StatusOr<std::unique_ptr<Linear>> CreateInt8(
      int64_t N, int64_t K, std::vector<int8_t> q, std::vector<float> scales,
      std::vector<float> bias);

  // x: [M, K], y: [M, N]. Internal error only if oneDNN fails.
  absl::Status Forward(const float* x, int64_t M, float* y,
                       ActivationScratch* scratch) const;

  int64_t rows() const { return N_; }
  int64_t cols() const { return K_; }
  WeightFormat format() const { return format_; }
  int64_t resident_bytes() const;
  // Smallest M at which oneDNN is used (f32 only; int8 always uses AVX2).
  int64_t crossover() const { return crossover_; }
  // Sets the crossover (e.g. from a measurement shared by equal shapes).
  void set_crossover(int64_t m) { crossover_ = m; }
  // Times the small-M kernel against oneDNN for M = 1, 2, 4, ... 128 and
  // returns the first M where oneDNN is faster twice in a row.
  int64_t MeasureCrossover() const;

 private:
  Linear() = default;
  void AddBias(int64_t M, float* y) const;

  WeightFormat format_ = WeightFormat::kF32;
  int64_t N_ = 0, K_ = 0;
  std::vector<float> w_f32_;             // [N, K]
  std::vector<int8_t> w_q_;              // [N, K]
  std::vector<float> w_scales_;          // [N, K/32]
  std::vector<float> bias_;              // [N] or empty
  std::unique_ptr<DnnlMatmulF32> dnnl_;  // f32 only
  int64_t crossover_ = 16;
};

}  // namespace lumen::engine::kernels
