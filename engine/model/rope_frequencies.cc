#include "engine/model/rope_frequencies.h"

#include <algorithm>
#include <cmath>

namespace lumen::engine {

namespace {

// YaRN's defaults in llama.cpp (cparams.yarn_beta_fast / _slow): the ramp
// runs from the pair that turns beta_fast times over the original context
// to the one that turns beta_slow times.
constexpr float kYarnBetaFast = 32.0f;
constexpr float kYarnBetaSlow = 1.0f;

// The dimension at which a pair turns `rotations` times over `context`
// positions (ggml_rope_yarn_corr_dim). In float like ggml, since the ramp
// ends are rounded to whole dimensions.
float YarnCorrectionDim(int64_t dims, int64_t context, float rotations,
                        float base) {
  return dims *
         std::log(static_cast<float>(context) /
                  (rotations * 2.0f * static_cast<float>(M_PI))) /
         (2.0f * std::log(base));
}

RopeFrequencies Build(int64_t dims, double base, double factor, bool yarn,
                      int64_t original_context, double attn_factor,
                      std::span<const float> factors) {
  RopeFrequencies r;
  const int64_t half = dims / 2;
  const double freq_scale = 1.0 / factor;
  // Pair i blends interpolated (freq_scale) and original frequencies with
  // weight ramp[i]: 1 for fast pairs (kept), 0 for slow ones (scaled).
  float low = 0, high = 0;
  if (yarn) {
    low = std::max(0.0f, std::floor(YarnCorrectionDim(
                             dims, original_context, kYarnBetaFast,
                             static_cast<float>(base))));
    high = std::min(
        static_cast<float>(dims - 1),
        std::ceil(YarnCorrectionDim(dims, original_context, kYarnBetaSlow,
                                    static_cast<float>(base))));
  }
  r.frequency.resize(half);
  for (int64_t i = 0; i < half; ++i) {
    double f = std::pow(base, -2.0 * i / dims);
    if (!factors.empty()) f /= factors[i];
    double scale = freq_scale;
    if (yarn) {
      const float y = (i - low) / std::max(0.001f, high - low);
      const double ramp = 1.0 - std::min(1.0f, std::max(0.0f, y));
      scale = freq_scale * (1.0 - ramp) + ramp;
    }
    r.frequency[i] = f * scale;
  }
  double mscale = attn_factor;
  if (yarn && factor > 1.0) mscale *= 1.0 + 0.1 * std::log(factor);
  r.mscale = static_cast<float>(mscale);
  return r;
}

}  // namespace

RopeFrequencies GlobalRopeFrequencies(const RopeConfig& rope,
                                      std::span<const float> factors) {
  return Build(rope.dim, rope.base, rope.factor,
               rope.scaling == RopeScalingType::kYarn, rope.original_context,
               rope.attn_factor, factors);
}

RopeFrequencies SlidingRopeFrequencies(const RopeConfig& rope) {
  return Build(rope.dim, rope.base_sliding, 1.0, false, rope.original_context,
               rope.attn_factor, {});
}

}  // namespace lumen::engine
