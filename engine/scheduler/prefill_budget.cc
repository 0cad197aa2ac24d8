#include "engine/scheduler/prefill_budget.h"

#include <algorithm>
#include <cmath>

namespace lumen::engine {
namespace {

// Weight of the older steps in each estimate: about the last ten steps
// count, enough to follow a batch that grows or contexts that lengthen,
// few enough that one slow step (a page fault, another process) moves the
// bound by a fraction only.
constexpr double kDecay = 0.9;
// The prompt-cost estimate moves faster: it is what the bound divides by.
constexpr double kPromptNewWeight = 0.2;
// A step with fewer prompt tokens says little about their cost per token.
constexpr int32_t kMinPromptSample = 16;

}  // namespace

PrefillBudget::PrefillBudget(const PrefillBudgetOptions& options)
    : options_(options) {
  options_.min_tokens = std::min(options_.min_tokens, options_.max_tokens);
}

double PrefillBudget::DecodeStepSeconds(int32_t decoding) const {
  if (w_ == 0) return 0;
  const double mean_n = n_ / w_, mean_t = t_ / w_;
  const double var = nn_ / w_ - mean_n * mean_n;
  // Streams that varied by less than about one: no slope to fit.
  if (!(var > 0.25)) return mean_t;
  const double per_stream = std::max(0.0, (nt_ / w_ - mean_n * mean_t) / var);
  const double fixed = std::max(0.0, mean_t - per_stream * mean_n);
  return fixed + per_stream * decoding;
}

void PrefillBudget::Observe(int32_t decoding, int32_t prompt_tokens,
                            double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds)) return;
  if (prompt_tokens == 0) {
    if (decoding <= 0) return;
    const double n = decoding;
    w_ = kDecay * w_ + 1;
    n_ = kDecay * n_ + n;
    t_ = kDecay * t_ + seconds;
    nn_ = kDecay * nn_ + n * n;
    nt_ = kDecay * nt_ + n * seconds;
    return;
  }
  if (prompt_tokens < kMinPromptSample) return;
  // Before any decode-only step, a prompt-only step's whole time is an
  // upper bound of its tokens' cost: a first guess that errs toward
  // smaller chunks.
  const double decode = DecodeStepSeconds(decoding);
  const double added = (seconds - decode) / prompt_tokens;
  if (prompt_token_seconds_ == 0) {
    if (added > 0) prompt_token_seconds_ = added;
    return;
  }
  // A noisy step can make `added` tiny or negative: a floor of a tenth of
  // the estimate keeps one such step from unbounding the next.
  prompt_token_seconds_ =
      (1 - kPromptNewWeight) * prompt_token_seconds_ +
      kPromptNewWeight * std::max(added, 0.1 * prompt_token_seconds_);
}

int32_t PrefillBudget::Tokens(int32_t decoding) const {
  const double decode = DecodeStepSeconds(std::max(decoding, 1));
  if (!(options_.max_stall > 0) || decode == 0 || prompt_token_seconds_ == 0)
    return options_.max_tokens;
  const double fit = options_.max_stall * decode / prompt_token_seconds_;
  if (!(fit < options_.max_tokens)) return options_.max_tokens;  // inf, NaN
  return std::max(options_.min_tokens, static_cast<int32_t>(fit));
}

}  // namespace lumen::engine
