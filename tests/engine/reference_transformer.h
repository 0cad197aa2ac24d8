#pragma once
// A naive llama/qwen2/MoE forward pass written independently of the engine:
// plain loops, double accumulation, one sequence, full causal attention, no
// KV cache. Weights of every GGUF type are dequantized by naive_quants.h.
// Tests compare the engine's logits against it.

#include <cstdint>
#include <span>
#include <vector>

#include "engine/gguf/gguf_file.h"

namespace lumen::testing {

// Logits of every position of `tokens`: [tokens.size()][n_vocab]. Handles
// mixture-of-experts layers (Mixtral, Qwen2-MoE). With `adapter`, its LoRA
// deltas are merged into the weights first: W + (alpha / r) B A.
std::vector<std::vector<double>> ReferenceLogits(
    const engine::GgufFile& file, std::span<const int32_t> tokens,
    const engine::GgufFile* adapter = nullptr);

}  // namespace lumen::testing
