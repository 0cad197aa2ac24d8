#include "engine/scheduler/prefill_budget.h"

#include <algorithm>
#include <cmath>

namespace lumen::engine {
namespace {

// Weight of the newest step in each running estimate: about the last ten
// steps count, enough to follow a batch that grows or a context that
// lengthens, few enough that one slow step (a page fault, another process)
// moves the bound by a fraction only.
constexpr double kNewWeight = 0.2;
// A step with fewer prompt tokens says little about their cost per token:
// its fixed costs (norms, the output head, sampling) dominate.
constexpr int32_t kMinPromptSample = 16;

double Blend(double estimate, double sample) {
  return estimate == 0 ? sample
                       : (1 - kNewWeight) * estimate + kNewWeight * sample;
}

}  // namespace

PrefillBudget::PrefillBudget(const PrefillBudgetOptions& options)
    : options_(options), tokens_(options.max_tokens) {
  options_.min_tokens = std::min(options_.min_tokens, options_.max_tokens);
}

void PrefillBudget::Observe(int32_t decode_tokens, int32_t prompt_tokens,
                            double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds)) return;
  if (prompt_tokens == 0) {
    if (decode_tokens > 0) decode_seconds_ = Blend(decode_seconds_, seconds);
  } else if (prompt_tokens >= kMinPromptSample) {
    if (decode_tokens == 0) {
      prompt_token_seconds_ =
          Blend(prompt_token_seconds_, seconds / prompt_tokens);
    } else if (decode_seconds_ > 0) {
      // What the prompt tokens added to a decode-only step. A noisy step
      // can make it negative: a floor of a tenth of the estimate keeps one
      // such step from unbounding the next.
      const double added = (seconds - decode_seconds_) / prompt_tokens;
      if (prompt_token_seconds_ > 0) {
        prompt_token_seconds_ =
            Blend(prompt_token_seconds_,
                  std::max(added, 0.1 * prompt_token_seconds_));
      } else if (added > 0) {
        prompt_token_seconds_ = added;
      }
    }
  }
  Recompute();
}

void PrefillBudget::Recompute() {
  if (options_.max_stall <= 0 || decode_seconds_ == 0 ||
      prompt_token_seconds_ == 0) {
    tokens_ = options_.max_tokens;
    return;
  }
  const double fit =
      options_.max_stall * decode_seconds_ / prompt_token_seconds_;
  tokens_ = static_cast<int32_t>(std::clamp<double>(
      std::floor(fit), options_.min_tokens, options_.max_tokens));
}

}  // namespace lumen::engine
