#pragma once
// ModelConfig: the hyper-parameters of a GGUF model, read from metadata only
// (`<arch>.embedding_length`, ...), with the defaults llama.cpp applies.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"

namespace lumen::engine {

struct ModelConfig {
  std::string arch;    // general.architecture: "llama", "qwen2", ...
  std::string name;    // general.name, may be empty
  int64_t n_embd = 0;  // model width
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // grouped-query attention when < n_heads
  int64_t head_dim = 0;    // n_embd / n_heads unless key_length says otherwise
  int64_t n_ff = 0;        // FFN hidden width (per expert for MoE)
  int64_t n_ctx_train = 0;
  int64_t n_vocab = 0;
  int64_t rope_dim = 0;  // rotated dimensions per head
  double rope_base = 10000.0;
  double rope_scale = 1.0;  // linear scaling: positions are divided by it
  double norm_eps = 1e-5;
  int64_t n_experts = 0;  // mixture of experts when > 0
  int64_t n_experts_used = 0;
  int64_t n_ff_expert = 0;    // hidden width of one expert
  int64_t n_ff_shared = 0;    // qwen2moe's shared expert (0: none)
  bool has_qkv_bias = false;  // qwen2
  bool tied_output = false;   // no output.weight: the embedding is reused

  // InvalidArgument naming the key for missing or inconsistent values.
  static absl::StatusOr<ModelConfig> FromGguf(const GgufFile& file);

  bool moe() const { return n_experts > 0; }
  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // K and V bytes per token of context for an fp32 cache.
  int64_t KvBytesPerToken(int bytes_per_value = 4) const {
    return 2 * n_layers * kv_dim() * bytes_per_value;
  }
};

}  // namespace lumen::engine
