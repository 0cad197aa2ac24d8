#pragma once
// Linear: y[M,N] = x[M,K] * W[N,K]^T + b with W held as fp32, or packed:
// row ranges in their own GGUF block types (a Q4_K_M qkv holds Q4_K q/k
// rows and Q6_K v rows). fp32 weights on AVX-512 are rewritten at load into
// panels (f32_panel.h) whose kernel runs at every M; elsewhere fp32 calls
// pick their kernel by M from a table measured for this shape at load time:
// the small-M kernel or oneDNN's fp32 GEMM. Packed weights and fp32 panels
// use one kernel for every M, so that a row's result does not depend on the
// batch (quant_kernels.h).

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "base/page_array.h"
#include "engine/gguf/ggml_type.h"
#include "engine/kernels/dnnl_matmul.h"
#include "engine/kernels/f32_panel.h"
#include "engine/kernels/kernel_choice_cache.h"
#include "engine/quant/quant_kernels.h"

namespace lumen::engine::kernels {

enum class WeightFormat { kF32, kPacked };

// What an fp32 matrix does to its activations before the product. A GGUF
// F16 (BF16) matrix multiplies activations rounded to F16 (BF16) in
// llama.cpp: ggml converts them to the weights' dot-product type. Doing the
// same keeps a model's results within float-order noise of llama.cpp's;
// without it, 8-bit activation quantization in the layers after an F16
// matrix turns the difference into log-probability noise (quants/README).
enum class InputRounding { kNone, kF16, kBF16 };

// Per-call scratch, sized once by the owner and shared by all layers.
struct LinearScratch {
  // The rows quantized per 32 values (the packed kernels but the tiles').
  std::vector<int8_t> q;        // [max_rows * max_k]
  std::vector<float> d4;        // [max_rows * max_k / 4]
  std::vector<float> sum16;     // [max_rows * max_k / 16]
  std::vector<float> sum32;     // [max_rows * max_k / 32]
  std::vector<int32_t> zsum32;  // [max_rows * max_k / 32]
  // The same rows quantized per 256 values (the Q4_K/Q6_K tile kernel).
  std::vector<int8_t> q256;     // [max_rows * max_k]
  std::vector<float> d256;      // [max_rows * max_k / 256]
  std::vector<int16_t> bsum16;  // [max_rows * max_k / 16]
  std::vector<int16_t> bsum32;  // [max_rows * max_k / 32]
  std::vector<uint8_t> panels;  // packed GEMM panels, every OpenMP thread
  // [max_rows * max_k] activations rounded for InputRounding; left
  // uninitialized (no resident pages unless a matrix rounds its inputs).
  std::unique_ptr<float[]> rounded;
  int64_t rounded_size = 0;
  int64_t max_k = 0;
  // `threads`: the OpenMP team that will run the kernels (0: this thread's
  // omp_get_max_threads()); the packed kernel needs a panel per thread.
  void Reserve(int64_t rows, int64_t max_k, int threads = 0);
  // 64-byte aligned start of `panels`.
  uint8_t* panel_base();
  // How many packed-kernel panels of a K-wide matrix `panels` holds (the
  // packed kernel runs on at most that many threads).
  int panel_slots(int64_t K) const;
};

// Rows of a packed Linear, in one GGUF type: a packed type (quant_type.h)
// with `data` its [rows, K] blocks, or kF32 with `f32` [rows, K] (fp32
// rows fused with packed ones).
struct PackedPart {
  GgmlType type = GgmlType::kF32;
  int64_t rows = 0;
  PageArray<uint8_t> data;
  std::vector<float> f32;
};

class Linear {
 public:
  // Kernel choice per M bucket: bucket b covers M in [2^b, 2^(b+1)).
  static constexpr int kBuckets = 10;

  // w: [N, K] fp32. bias: [N] or empty.
  static absl::StatusOr<std::unique_ptr<Linear>> CreateF32(
      int64_t N, int64_t K, std::vector<float> w, std::vector<float> bias);
  // The same with the rows read from `rows` straight into the layout the
  // kernels use (panels on AVX-512 CPUs, f32_panel.h), on the calling
  // thread's OpenMP team; its first error is returned.
  static absl::StatusOr<std::unique_ptr<Linear>> CreateF32FromRows(
      int64_t N, int64_t K, F32RowSource rows, std::vector<float> bias);
  // Parts stacked in order (N = sum of their rows); K a whole number of each
  // packed part's blocks. InvalidArgument on sizes that do not match.
  static absl::StatusOr<std::unique_ptr<Linear>> CreatePacked(
      int64_t K, std::vector<PackedPart> parts, std::vector<float> bias);

  // x: [M, K], y: [M, N]. Internal error only if oneDNN fails.
  absl::Status Forward(const float* x, int64_t M, float* y,
                       LinearScratch* scratch) const;

  int64_t rows() const { return N_; }
  int64_t cols() const { return K_; }
  WeightFormat format() const { return format_; }
  // fp32 format only (InvalidArgument otherwise).
  absl::Status SetInputRounding(InputRounding rounding);
  int64_t resident_bytes() const;
  // Row `row` of W in fp32 ([K] into out): token embeddings read one row of
  // a packed or fp32 matrix this way. Any format.
  void DequantizeRow(int64_t row, float* out) const;
  // The GGUF type of each packed part, e.g. "q4_K+q6_K"; "f32" or "int8"
  // for the other formats.
  std::string TypeSummary() const;

  // Times the small-M kernel against oneDNN at M = 1, 2, 4, ... up to
  // min(256, max_m) and records the faster one per bucket (one crossover,
  // found by binary search; larger M uses oneDNN). With a cache, the
  // crossover it holds for this matrix is used instead, or the timed one is
  // added to it. No-op for packed weights and fp32 panels. True when it
  // timed kernels.
  bool MeasureKernelChoice(int64_t max_m = 256,
                           KernelChoiceCache* cache = nullptr);
  // How many buckets MeasureKernelChoice times for max_m: those up to the
  // one holding min(256, max_m).
  static int MeasuredBuckets(int64_t max_m);
  // The first of `buckets` buckets (M = 2^b) where oneDNN is faster, by
  // binary search assuming one crossover (`buckets` when it never is);
  // dnnl_faster(m) times both kernels at M = m.
  static int FindCrossover(int buckets,
                           absl::FunctionRef<bool(int64_t m)> dnnl_faster);
  // Copies the choice from a layer of the same shape and format.
  void CopyKernelChoice(const Linear& other) { use_dnnl_ = other.use_dnnl_; }
  // Forces one kernel for every M (tests, and the non-packed matrices of
  // quantized models: Transformer::PinKernelsIfPacked). fp32 panels have one
  // kernel already.
  void ForceKernel(bool dnnl) { use_dnnl_.fill(dnnl); }
  // e.g. "small<8 dnnl<32 small<64 dnnl": where the choice changes.
  std::string KernelChoiceSummary() const;
  // fp32 weights held as panels (f32_panel.h; AVX-512 CPUs).
  bool f32_panel() const { return f32_panel_; }

 private:
  Linear() = default;
  // Shared by the factories: shape, bias and the oneDNN primitive.
  absl::Status Init(int64_t N, int64_t K, std::vector<float> bias);
  static int Bucket(int64_t M);
  // fp32 format: the small-M kernel or oneDNN.
  absl::Status RunSmall(const float* x, int64_t M, float* y) const;
  absl::Status RunDnnl(const float* x, int64_t M, float* y) const;
  void AddBias(int64_t M, float* y) const;
  // Packed format: quantizes x into scratch the ways the segments' kernels
  // read it; the other group of the result is null.
  quant::QuantizedActs QuantizeForPacked(const float* x, int64_t M,
                                         LinearScratch* scratch) const;
  // Packed format, every part.
  void RunPacked(const float* x, int64_t M, float* y,
                 LinearScratch* scratch) const;

  struct Segment {
    GgmlType type;
    int64_t first_row;
    int64_t rows;
    int64_t row_bytes;        // packed types
    PageArray<uint8_t> data;  // [rows, row_bytes]
    // data's rows in quant::InterleaveRows order (where the kernels want it).
    bool interleaved = false;
    std::vector<float> f32;  // [rows, K] when type is kF32
  };

  WeightFormat format_ = WeightFormat::kF32;
  InputRounding input_rounding_ = InputRounding::kNone;
  int64_t N_ = 0, K_ = 0;
  // [N, K], or with f32_panel_ the panel layout (F32PanelFloats(N, K)
  // floats).
  PageArray<float> w_f32_;
  bool f32_panel_ = false;
  std::vector<float> bias_;        // [N] or empty
  std::vector<Segment> segments_;  // packed format, in row order
  // Packed: whether some segment's kernel reads the activations quantized
  // per span (Q4_K/Q6_K tiles), and whether some reads them per 32 values.
  bool span_acts_ = false;
  bool block_acts_ = false;
  std::unique_ptr<DnnlMatmulF32> dnnl_;
  std::array<bool, kBuckets> use_dnnl_{};  // default: small-M below 16
};

}  // namespace lumen::engine::kernels
