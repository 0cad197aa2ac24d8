#pragma once
// LayerWeights: the tensors of one transformer layer, loaded for the steps
// its family's block runs (model_family.h): a block without kQkNorm never
// asks for attn_q_norm, a block with kPostFfnNorm requires post_ffw_norm.
// Every matrix goes through weight_loader.h. Engine thread only after load.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/linear.h"
#include "engine/model/model_config.h"
#include "engine/model/moe_ffn.h"
#include "engine/model/weight_loader.h"

namespace lumen::engine {

struct LayerWeights {
  std::vector<float> attn_norm;              // [n_embd]
  std::vector<float> q_norm, k_norm;         // [head_dim] (kQkNorm)
  std::vector<float> post_attn_norm;         // [n_embd] (kPostAttentionNorm)
  std::vector<float> ffn_norm;               // [n_embd]
  std::vector<float> post_ffn_norm;          // [n_embd] (kPostFfnNorm)
  std::unique_ptr<kernels::Linear> qkv;      // [q_dim + 2 kv_dim, n_embd]
  std::unique_ptr<kernels::Linear> wo;       // [n_embd, q_dim]
  std::unique_ptr<kernels::Linear> gate_up;  // [2 n_ff, n_embd] (dense)
  std::unique_ptr<kernels::Linear> down;     // [n_embd, n_ff] (dense)
  std::unique_ptr<MoeFfn> moe;               // instead of gate_up/down

  // The dense matrices (attention, and the FFN unless it is MoE).
  std::vector<kernels::Linear*> matrices() const;
  int64_t norm_bytes() const;
};

// Loads layer `layer` of a model of family c.family. q/k/v come from
// attn_q/k/v (with biases when the file has them) or from a fused
// attn_qkv; the gated FFN from ffn_gate + ffn_up or from one fused ffn_up
// of 2 n_ff rows, gate first; MoE models load their experts (`max_tokens`
// sizes their step buffers); matrices in the format `mode` gives them
// (weight_loader.h). InvalidArgument names a missing or misshapen
// tensor; Unimplemented an unloadable tensor type.
absl::StatusOr<LayerWeights> LoadLayerWeights(const GgufFile& f,
                                              const ModelConfig& c,
                                              int64_t layer, WeightMode mode,
                                              int64_t max_tokens);

}  // namespace lumen::engine
