#include "tools/synth/random_tensors.h"

#include <cstring>

#include "engine/gguf/tensor_convert.h"

namespace lumen::tools {

using engine::GgmlType;

absl::Status RandomTensors::Vector(const std::string& name, int64_t n,
                                   float value, bool random) {
  std::vector<float> v(n, value);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  if (random) {
    for (float& x : v) x = normal(rng_);
  }
  return Add(name, {n}, GgmlType::kF32, v);
}

absl::Status RandomTensors::Norm(const std::string& name, int64_t n,
                                 float jitter) {
  std::vector<float> v(n, 1.0f);
  if (jitter != 0.0f) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& x : v) x += jitter * normal(rng_);
  }
  return Add(name, {n}, GgmlType::kF32, v);
}

absl::Status RandomTensors::Normal(const std::string& name,
                                   std::vector<int64_t> dims, GgmlType type,
                                   float stddev) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(n);
  std::normal_distribution<float> normal(0.0f, stddev);
  for (float& x : v) x = normal(rng_);
  return Add(name, std::move(dims), type, v);
}

absl::Status RandomTensors::Add(const std::string& name,
                                std::vector<int64_t> dims, GgmlType type,
                                const std::vector<float>& v) {
  std::vector<uint8_t> bytes;
  if (type == GgmlType::kQ8_0) {
    bytes = engine::QuantizeQ8_0(v);
  } else if (type == GgmlType::kF16) {
    bytes.resize(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = engine::FloatToHalf(v[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  } else {
    bytes.resize(v.size() * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
  }
  return w_->AddTensor(name, type, std::move(dims), std::move(bytes));
}

}  // namespace lumen::tools
