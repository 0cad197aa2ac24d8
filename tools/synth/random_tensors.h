#pragma once
// RandomTensors: writes normally distributed tensors into a GGUF writer from
// one seeded generator, encoded as f32, f16 or q8_0. Shared by the model and
// LoRA-adapter synthesizers.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/gguf/ggml_type.h"
#include "engine/gguf/gguf_writer.h"

namespace lumen::tools {

class RandomTensors {
 public:
  // Matrices are written as `matrix_type`; vectors and F32Matrix as f32.
  RandomTensors(engine::GgmlType matrix_type, engine::GgufWriter* w,
                uint64_t seed)
      : matrix_type_(matrix_type), w_(w), rng_(seed) {}

  // `rows` outputs x `cols` inputs (ggml dims {cols, rows}), std
  // matrix_std (0.02 unless set).
  absl::Status Matrix(const std::string& name, int64_t cols, int64_t rows) {
    return Normal(name, {cols, rows}, matrix_type_, matrix_std_);
  }
  // Stacked expert matrices {cols, rows, experts}, std matrix_std.
  absl::Status Experts(const std::string& name, int64_t cols, int64_t rows,
                       int64_t experts) {
    return Normal(name, {cols, rows, experts}, matrix_type_, matrix_std_);
  }
  void set_matrix_std(float stddev) { matrix_std_ = stddev; }
  // Always f32 (routers, as llama.cpp's quantizer leaves them; adapters).
  absl::Status F32Matrix(const std::string& name, int64_t cols, int64_t rows,
                         float stddev) {
    return Normal(name, {cols, rows}, engine::GgmlType::kF32, stddev);
  }
  // n values equal to `value`, or random (std 0.02) when `random`.
  absl::Status Vector(const std::string& name, int64_t n, float value,
                      bool random = false);
  // A norm weight: n values 1 + jitter x N(0, 1); exactly 1 (no draws)
  // when jitter is 0.
  absl::Status Norm(const std::string& name, int64_t n, float jitter);
  // f32 values as given.
  absl::Status Values(const std::string& name, const std::vector<float>& v) {
    return Add(name, {static_cast<int64_t>(v.size())}, engine::GgmlType::kF32,
               v);
  }

 private:
  absl::Status Normal(const std::string& name, std::vector<int64_t> dims,
                      engine::GgmlType type, float stddev);
  absl::Status Add(const std::string& name, std::vector<int64_t> dims,
                   engine::GgmlType type, const std::vector<float>& v);

  engine::GgmlType matrix_type_;
  engine::GgufWriter* w_;
  std::mt19937_64 rng_;
  float matrix_std_ = 0.02f;
};

}  // namespace lumen::tools
