#pragma once
// LoraAdapter: a low-rank fine-tune of a base model in llama.cpp's GGUF LoRA
// format (general.type = adapter, adapter.type = lora, adapter.lora.alpha,
// tensors "<base tensor>.lora_a" {in, r} and ".lora_b" {r, out}). The
// adapted layer computes W x + (alpha / r) B (A x): the base matmul runs once
// for a whole batch and each adapter adds its delta to its own rows only
// (S-LoRA / Punica), so requests with different adapters share a step.
// Immutable after Load; shared by the requests that use it.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/model_config.h"

namespace lumen::engine {

// The matrices of a llama block an adapter may change.
enum class LoraTarget { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kLoraTargets = 7;
inline constexpr int64_t kMaxLoraRank = 256;

// One adapted matrix [out, in]: delta(x) = bt^T (a x), scale folded into bt.
struct LoraMatrix {
  int64_t rank = 0, in = 0, out = 0;
  std::vector<float> a;   // [rank, in]
  std::vector<float> bt;  // [rank, out], times alpha / rank
};

class LoraAdapter {
 public:
  // Validates `file` against the base model: architecture, known target
  // tensors, shapes, ranks. InvalidArgument names the tensor and the problem.
  static absl::StatusOr<std::unique_ptr<LoraAdapter>> Load(
      const GgufFile& file, const ModelConfig& base);

  // nullptr when the adapter leaves this matrix alone.
  const LoraMatrix* Get(int64_t layer, LoraTarget target) const {
    return layers_[layer][static_cast<int>(target)].get();
  }
  // Unique per loaded adapter (prefix-cache salt): never 0.
  uint64_t id() const { return id_; }
  float alpha() const { return alpha_; }
  int64_t max_rank() const { return max_rank_; }
  int64_t num_parameters() const { return num_parameters_; }
  // e.g. "q,k,v,o" — the targets present in at least one layer.
  std::string TargetSummary() const;

  // y[r, :] += delta(x[r, :]) for `rows` rows of x ([rows, m.in],
  // contiguous) into y (row stride ldy). `scratch` holds rows * m.rank
  // floats. Each row's result is computed the same way whatever `rows` is,
  // so a request gets the same numbers batched or alone.
  static void AddDelta(const LoraMatrix& m, const float* x, int64_t rows,
                       float* y, int64_t ldy, float* scratch);

 private:
  LoraAdapter() = default;
  using LayerMatrices = std::array<std::unique_ptr<LoraMatrix>, kLoraTargets>;
  std::vector<LayerMatrices> layers_;
  uint64_t id_ = 0;
  float alpha_ = 0;
  int64_t max_rank_ = 0;
  int64_t num_parameters_ = 0;
};

// "q" -> kQ, ..., "down" -> kDown; InvalidArgument otherwise.
absl::StatusOr<LoraTarget> ParseLoraTarget(absl::string_view name);
// The base tensor name of a target ("attn_q", "ffn_down", ...).
const char* LoraTargetTensor(LoraTarget target);

}  // namespace lumen::engine
