#pragma once
// Linear: y[M,N] = x[M,K] * W[N,K]^T + b with W held as fp32 or as int8 in
// 32-blocks. Each call picks its kernel by M from a table measured for this
// shape at load time: the AVX2 small-M kernels (fp32, or int8 x int8), or
// oneDNN's fp32 GEMM (for int8 weights, on a dequantized copy in scratch).

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kernels/dnnl_matmul.h"

namespace lumen::engine::kernels {

enum class WeightFormat { kF32, kInt8 };

// Per-call scratch, sized once by the owner and shared by all layers.
struct LinearScratch {
  std::vector<int8_t> q;       // [max_rows * max_k] quantized activations
  std::vector<float> scales;   // [max_rows * max_k / 32]
  std::vector<float> weights;  // [max N * K] dequantized int8 weights
  void Reserve(int64_t rows, int64_t max_k, int64_t max_weight_elements);
};

class Linear {
 public:
  // Kernel choice per M bucket: bucket b covers M in [2^b, 2^(b+1)).
  static constexpr int kBuckets = 10;

  // w: [N, K] fp32. bias: [N] or empty.
  static absl::StatusOr<std::unique_ptr<Linear>> CreateF32(
      int64_t N, int64_t K, std::vector<float> w, std::vector<float> bias);
  // q: [N, K] int8 in [-127, 127], scales: [N, K/32]; K % 32 == 0.
  static absl::StatusOr<std::unique_ptr<Linear>> CreateInt8(
      int64_t N, int64_t K, std::vector<int8_t> q, std::vector<float> scales,
      std::vector<float> bias);

  // x: [M, K], y: [M, N]. Internal error only if oneDNN fails.
  absl::Status Forward(const float* x, int64_t M, float* y,
                       LinearScratch* scratch) const;

  int64_t rows() const { return N_; }
  int64_t cols() const { return K_; }
  WeightFormat format() const { return format_; }
  int64_t resident_bytes() const;

  // Times the small-M kernel against oneDNN for M = 1, 2, 4, ..., 256 and
  // records the faster one per bucket (M >= 512 uses oneDNN).
  void MeasureKernelChoice(LinearScratch* scratch);
  // Copies the choice from a layer of the same shape and format.
  void CopyKernelChoice(const Linear& other) { use_dnnl_ = other.use_dnnl_; }
  // Forces one kernel for every M (tests).
  void ForceKernel(bool dnnl) { use_dnnl_.fill(dnnl); }
  // e.g. "small<8 dnnl<32 small<64 dnnl": where the choice changes.
  std::string KernelChoiceSummary() const;

 private:
  Linear() = default;
  // Shared by the factories: shape, bias and the oneDNN primitive.
  absl::Status Init(int64_t N, int64_t K, std::vector<float> bias);
  static int Bucket(int64_t M);
  absl::Status RunSmall(const float* x, int64_t M, float* y,
                        LinearScratch* scratch) const;
  absl::Status RunDnnl(const float* x, int64_t M, float* y,
                       LinearScratch* scratch) const;
  void AddBias(int64_t M, float* y) const;

  WeightFormat format_ = WeightFormat::kF32;
  int64_t N_ = 0, K_ = 0;
  std::vector<float> w_f32_;     // [N, K]
  std::vector<int8_t> w_q_;      // [N, K]
  std::vector<float> w_scales_;  // [N, K/32]
  std::vector<float> bias_;      // [N] or empty
  std::unique_ptr<DnnlMatmulF32> dnnl_;
  std::array<bool, kBuckets> use_dnnl_{};  // default: small-M below 16
};

}  // namespace lumen::engine::kernels
