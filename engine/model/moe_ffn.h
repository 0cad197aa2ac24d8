#pragma once
// MoeFfn: a mixture-of-experts SwiGLU feed-forward block (Mixtral, Qwen2-MoE).
// A router scores every expert per token; softmax, then the top-k experts
// are kept (Mixtral renormalizes their weights to sum 1, Qwen2-MoE does not).
// Each expert then runs once over all tokens routed to it in the step
// (gathered rows, one Linear call per matrix), and the outputs are scattered
// back weighted. Qwen2-MoE adds a shared expert that every token passes
// through, scaled by sigmoid(x . shared_gate). Engine thread only; Forward
// allocates nothing.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kernels/linear.h"

namespace lumen::engine {

struct MoeShape {
  int64_t n_embd = 0;
  int64_t n_ff = 0;  // per expert
  int64_t n_experts = 0;
  int64_t n_used = 0;  // top-k
  bool normalize_top_k = true;
  int64_t shared_ff = 0;  // 0: no shared expert
};

// gate_up: [2 ff, n_embd] (gate rows then up rows); down: [n_embd, ff].
struct FfnExpert {
  std::unique_ptr<kernels::Linear> gate_up;
  std::unique_ptr<kernels::Linear> down;
};

class MoeFfn {
 public:
  // router: [n_experts, n_embd]. shared / shared_gate ([n_embd]) only when
  // shape.shared_ff > 0. Buffers hold up to max_tokens tokens per call.
  static absl::StatusOr<std::unique_ptr<MoeFfn>> Create(
      const MoeShape& shape, std::unique_ptr<kernels::Linear> router,
      std::vector<FfnExpert> experts, FfnExpert shared,
      std::vector<float> shared_gate, int64_t max_tokens);

  // out[n, n_embd] = the block's output for x[n, n_embd] (not added to x).
  absl::Status Forward(const float* x, int64_t n, float* out,
                       kernels::LinearScratch* scratch);

  // Tokens routed to each expert since load (readable from any thread).
  int64_t expert_tokens(int64_t expert) const {
    return routed_[expert].load(std::memory_order_relaxed);
  }
  const MoeShape& shape() const { return shape_; }
  int64_t resident_bytes() const;
  // Weight bytes and multiply-adds one token touches (router, its top-k
  // experts and the shared expert).
  int64_t active_bytes_per_token() const;
  int64_t active_macs_per_token() const;
  // Times kernels on expert 0 (or finds them in the cache) and shares the
  // choice with every expert. Returns the matrices it timed.
  int MeasureKernelChoice(kernels::KernelChoiceCache* cache = nullptr);
  void CopyKernelChoice(const MoeFfn& other);
  // Every matrix: the router, each expert's and the shared expert's.
  std::vector<kernels::Linear*> Matrices();

 private:
  MoeFfn() = default;
  // Runs one SwiGLU expert over rows [n, n_embd] into y.
  absl::Status RunExpert(const FfnExpert& e, const float* x, int64_t n,
                         float* y, kernels::LinearScratch* scratch);

  MoeShape shape_;
  std::unique_ptr<kernels::Linear> router_;
  std::vector<FfnExpert> experts_;
  FfnExpert shared_;
  std::vector<float> shared_gate_;
  std::unique_ptr<std::atomic<int64_t>[]> routed_;

  // Step buffers, sized for max_tokens at creation.
  std::vector<float> logits_;      // [T, n_experts]
  std::vector<int32_t> choice_;    // [T, n_used] expert per slot
  std::vector<float> weight_;      // [T, n_used]
  std::vector<int32_t> offsets_;   // [n_experts + 1] into order_
  std::vector<int32_t> order_;     // [T * n_used] slots grouped by expert
  std::vector<float> gathered_;    // [T, n_embd]
  std::vector<float> gate_up_;     // [T, 2 max_ff]
  std::vector<float> hidden_;      // [T, max_ff]
  std::vector<float> expert_out_;  // [T, n_embd]
};

}  // namespace lumen::engine
