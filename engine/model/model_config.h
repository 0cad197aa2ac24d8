#pragma once
// ModelConfig: the hyper-parameters of a GGUF model, read from metadata only
// (`<arch>.embedding_length`, ...) with llama.cpp's key names and the
// defaults llama.cpp applies; the model's family (model_family.h) adds its
// own. Plain data, any thread.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/gguf/gguf_file.h"

namespace lumen::engine {

struct ModelFamily;

// rope.scaling.type. Without the key llama.cpp assumes linear (a no-op
// without a factor); longrope is plain RoPE with the frequency-factor
// tensors. Any other name is refused.
enum class RopeScalingType { kNone, kLinear, kYarn, kLongRope };
absl::string_view RopeScalingName(RopeScalingType type);

// Frequency factors stored as tensors; each divides one pair's frequency.
enum class RopeFactorTensors {
  kNone,
  kFreqs,      // rope_freqs.weight (Llama 3.1+): every layer, every context
  kLongShort,  // rope_factors_long/short.weight (Phi-3 LongRoPE): chosen by
               // the serving context (Transformer::Load)
};

struct RopeConfig {
  int64_t dim = 0;            // rotated dimensions per head
  double base = 10000.0;      // rope.freq_base
  double base_sliding = 0.0;  // sliding-window layers' base (gemma3)
  RopeScalingType scaling = RopeScalingType::kLinear;
  double factor = 1.0;           // rope.scaling.factor (context stretch)
  int64_t original_context = 0;  // rope.scaling.original_context_length
  double attn_factor = 1.0;      // rope.scaling.attn_factor: times cos, sin
  RopeFactorTensors factor_tensors = RopeFactorTensors::kNone;
};

struct ModelConfig {
  std::string arch;  // general.architecture: "llama", "qwen2", ...
  std::string name;  // general.name, may be empty
  // The decoder family; nullptr for architectures the Transformer cannot
  // run (bert embedding models, unknown names).
  const ModelFamily* family = nullptr;
  int64_t n_embd = 0;  // model width
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // grouped-query attention when < n_heads
  int64_t head_dim = 0;    // attention.key_length, else n_embd / n_heads
  int64_t n_ff = 0;        // FFN hidden width
  int64_t n_ctx_train = 0;
  int64_t n_vocab = 0;
  RopeConfig rope;
  double norm_eps = 1e-5;
  // Token embeddings are multiplied by this (gemma: sqrt(n_embd)).
  double embedding_scale = 1.0;
  // q.k is multiplied by this before the softmax (1/sqrt(head_dim) unless
  // the family says otherwise).
  double attention_scale = 0.0;
  // Sliding-window attention: a query at position p sees keys at
  // (p - sliding_window, p] on layer l when sliding(l).
  int64_t sliding_window = 0;  // 0: every layer attends to the whole context
  int64_t sliding_period = 0;  // layer l slides iff l % period < period - 1
  int64_t n_experts = 0;       // mixture of experts when > 0
  int64_t n_experts_used = 0;
  int64_t n_ff_expert = 0;          // hidden width of one expert
  int64_t n_ff_shared = 0;          // qwen2moe's shared expert (0: none)
  bool expert_weights_norm = true;  // top-k weights renormalized to sum 1
  bool has_qkv_bias = false;        // qwen2
  bool tied_output = false;         // no output.weight: the embedding is reused

  // InvalidArgument naming the key for missing or inconsistent values, and
  // for a rope.scaling.type other than none, linear, yarn, longrope.
  static absl::StatusOr<ModelConfig> FromGguf(const GgufFile& file);

  bool moe() const { return n_experts > 0; }
  bool sliding(int64_t layer) const {
    return sliding_window > 0 &&
           (sliding_period == 0 || layer % sliding_period < sliding_period - 1);
  }
  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // K and V bytes per token of context, at bytes_per_value per element.
  int64_t KvBytesPerToken(int bytes_per_value = 4) const {
    return 2 * n_layers * kv_dim() * bytes_per_value;
  }
};

}  // namespace lumen::engine
