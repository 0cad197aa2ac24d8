#pragma once
// PrefillBudget: how many prompt tokens a step that also decodes may take,
// sized from measured step times so that such a step lasts at most
// (1 + max_stall) times a decode-only step of as many streams
// (Sarathi-Serve's stall-free batching with a time budget rather than a
// fixed token count). A fixed token bound is wrong on every machine but
// one: the same 256 tokens are a small stall on a 16-core host and a 3x one
// on 2 cores with a big model.
//
// It models a step's wall time as
//   fixed + per_stream * decoding streams + per_prompt_token * prompt tokens
// - fixed and per_stream: a least-squares line through recent decode-only
//   steps (exponentially weighted); while their stream count has not
//   varied, per_stream is 0 and fixed their mean time;
// - per_prompt_token: recent steps with prompt tokens, each charged what it
//   took beyond the decode-only prediction for its streams (prompt-only
//   steps: beyond `fixed`).
// Until both parts are measured it bounds nothing; the bound never goes
// below min_tokens, so on a machine where even that exceeds the stall,
// prompts still move. Engine thread only.

#include <cstdint>

namespace lumen::engine {

struct PrefillBudgetOptions {
  // How much longer than a decode-only step a step with prompt tokens may
  // take, as a fraction of it (1: at most twice as long). 0 (or anything
  // not > 0) disables the time bound.
  double max_stall = 1.0;
  // Never fewer prompt tokens than this per decoding step.
  int32_t min_tokens = 64;
  // The bound when nothing is measured yet or the time bound is off.
  int32_t max_tokens = 2048;
};

class PrefillBudget {
 public:
  explicit PrefillBudget(const PrefillBudgetOptions& options);

  // Records one finished step: its decoding streams, prompt tokens and wall
  // time.
  void Observe(int32_t decoding, int32_t prompt_tokens, double seconds);
  // Prompt tokens the next step may take beside `decoding` streams, in
  // [min(min_tokens, max_tokens), max_tokens].
  int32_t Tokens(int32_t decoding) const;

  // The model's parts (0: not measured yet).
  double DecodeStepSeconds(int32_t decoding) const;
  double seconds_per_prompt_token() const { return prompt_token_seconds_; }

 private:
  PrefillBudgetOptions options_;
  // Exponentially weighted sums over decode-only steps: weight, streams,
  // seconds, streams^2, streams * seconds.
  double w_ = 0, n_ = 0, t_ = 0, nn_ = 0, nt_ = 0;
  double prompt_token_seconds_ = 0;  // 0: not measured yet
};

}  // namespace lumen::engine
