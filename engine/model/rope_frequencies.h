#pragma once
// RopeFrequencies: one RoPE variant reduced to a frequency per dimension
// pair and a factor on cos and sin, so that pair i at position p turns by
// p * frequency[i]. llama.cpp's rope (rope_yarn in ggml-cpu's ops.cpp, with
// the attention factor of llama-context.cpp) has exactly this form: the
// base, the frequency factors, linear scaling and the YaRN ramp are all
// constant per pair. Computed once at load; plain data.

#include <cstdint>
#include <span>
#include <vector>

#include "engine/model/model_config.h"

namespace lumen::engine {

struct RopeFrequencies {
  std::vector<double> frequency;  // [rope_dim / 2] radians per position
  float mscale = 1.0f;            // cos and sin are multiplied by it
};

// The model's RoPE for its global (not sliding-window) layers: base
// rope.base, the scaling of rope.scaling (linear: frequencies divided by
// the factor; yarn: llama.cpp's ramp between interpolated and original
// frequencies with beta_fast 32, beta_slow 1, and mscale 1 + 0.1 ln factor),
// and `factors` ([rope_dim / 2] frequency divisors, empty for none).
RopeFrequencies GlobalRopeFrequencies(const RopeConfig& rope,
                                      std::span<const float> factors);

// Sliding-window layers (gemma3): base rope.base_sliding, no context
// scaling, no factors; rope.attn_factor still applies, as in llama.cpp.
RopeFrequencies SlidingRopeFrequencies(const RopeConfig& rope);

}  // namespace lumen::engine
