#pragma once
// PrefillBudget: how many prompt tokens a step that also decodes may take,
// sized from measured step times so that such a step lasts at most
// (1 + max_stall) times a decode-only step (Sarathi-Serve's stall-free
// batching with a time budget rather than a fixed token count). A fixed
// token bound is wrong on every machine but one: the same 256 tokens are a
// small stall on a 16-core host and a 3x one on 2 cores with a big model.
//
// It keeps two running estimates, updated after every step:
//   - the seconds of a decode-only step (steps with no prompt tokens);
//   - the seconds one prompt token adds (prompt-only steps: seconds/tokens;
//     mixed steps: what the step took beyond a decode-only step, per token).
// Until both are measured it bounds nothing. Engine thread only.

#include <cstdint>

namespace lumen::engine {

struct PrefillBudgetOptions {
  // How much longer than a decode-only step a step with prompt tokens may
  // take, as a fraction of it (1: at most twice as long). 0 disables the
  // time bound.
  double max_stall = 1.0;
  // Never fewer prompt tokens than this per decoding step, so a long prompt
  // keeps moving when decode steps are very short.
  int32_t min_tokens = 64;
  // The bound when nothing is measured yet or the time bound is off.
  int32_t max_tokens = 2048;
};

class PrefillBudget {
 public:
  explicit PrefillBudget(const PrefillBudgetOptions& options);

  // Records one finished step: its decoding sequences, prompt tokens and
  // wall time.
  void Observe(int32_t decode_tokens, int32_t prompt_tokens, double seconds);
  // Prompt tokens the next decoding step may take, in
  // [min(min_tokens, max_tokens), max_tokens].
  int32_t tokens() const { return tokens_; }

  double decode_step_seconds() const { return decode_seconds_; }
  double seconds_per_prompt_token() const { return prompt_token_seconds_; }

 private:
  void Recompute();

  PrefillBudgetOptions options_;
  double decode_seconds_ = 0;        // 0: not measured yet
  double prompt_token_seconds_ = 0;  // 0: not measured yet
  int32_t tokens_;
};

}  // namespace lumen::engine
