#pragma once
// A naive forward pass of every decoder architecture Lumen runs (llama with
// or without rope_freqs, qwen2, qwen3, their MoE variants, gemma3, phi3),
// written independently of the engine from llama.cpp's descriptions (see
// shared/testdata/archs/README.md): plain loops, double accumulation, one
// sequence, no KV cache. Weights of every GGUF type are dequantized by
// naive_quants.h. Tests compare the engine's logits against it.

#include <cstdint>
#include <span>
#include <vector>

#include "engine/gguf/gguf_file.h"

namespace lumen::testing {

// Logits of every position of `tokens`: [tokens.size()][n_vocab]. Handles
// mixture-of-experts layers (Mixtral, Qwen2/3-MoE). With `adapter`, its LoRA
// deltas are merged into the weights first: W + (alpha / r) B A. `n_ctx`
// is the serving context, which picks LongRoPE factors (0: the model's).
std::vector<std::vector<double>> ReferenceLogits(
    const engine::GgufFile& file, std::span<const int32_t> tokens,
    const engine::GgufFile* adapter = nullptr, int64_t n_ctx = 0);

}  // namespace lumen::testing
