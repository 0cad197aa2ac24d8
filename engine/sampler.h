#pragma once
// Sampler: picks the next token from a row of logits. Temperature 0 is
// greedy. Otherwise penalties, top-k, top-p and min-p filter the candidates
// and a per-request RNG draws one, so the same seed and request give the same
// tokens whatever else shares the batch. Engine thread only; buffers grow to
// the vocabulary size once and are reused.

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace lumen::engine {

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy
  int32_t top_k = 0;                // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float repetition_penalty = 1.0f;  // 1: off (llama.cpp / CTRL style)
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
};

struct TokenLogprob {
  int32_t token;
  float logprob;
};

// Per-request sampling state: the RNG and the counts of generated tokens
// (for penalties).
class SamplerState {
 public:
  explicit SamplerState(const SamplingParams& params)
      : params_(params), rng_(params.seed) {}
  const SamplingParams& params() const { return params_; }
  std::mt19937_64& rng() { return rng_; }
  // Tokens already generated (penalties look at these).
  void Accept(int32_t token) { history_.push_back(token); }
  const std::vector<int32_t>& history() const { return history_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;
};

class Sampler {
 public:
  // Picks a token from `logits` ([n_vocab]; modified in place by penalties).
  // With `top_logprobs` > 0, fills `chosen` and `alternatives` (the most
  // likely tokens, by the model's unfiltered log-softmax).
  int32_t Sample(std::span<float> logits, SamplerState* state,
                 int32_t top_logprobs = 0, TokenLogprob* chosen = nullptr,
                 std::vector<TokenLogprob>* alternatives = nullptr);

  // Like Sample, but only tokens whose bit is set in `allowed` can be drawn
  // (bit t % 32 of word t / 32; [>= ceil(n_vocab / 32)] words, e.g. from
  // constrained::ConstraintState::FillAllowedMask). The other logits become
  // -inf before penalties, temperature and filters, so log-probabilities are
  // those of the constrained distribution. Internal error when the mask
  // allows no token or is too short: the engine fails the request.
  absl::StatusOr<int32_t> SampleMasked(
      std::span<float> logits, std::span<const uint32_t> allowed,
      SamplerState* state, int32_t top_logprobs = 0,
      TokenLogprob* chosen = nullptr,
      std::vector<TokenLogprob>* alternatives = nullptr);

 private:
  int32_t SampleFiltered(std::span<float> logits, bool masked,
                         SamplerState* state, int32_t top_logprobs,
                         TokenLogprob* chosen,
                         std::vector<TokenLogprob>* alternatives);
  struct Candidate {
    int32_t token;
    float logit;
  };
  void TopLogprobs(int32_t k, float raw_max, float raw_lse,
                   std::vector<TokenLogprob>* out) const;

  std::vector<Candidate> candidates_;  // [n_vocab]
  std::vector<float> raw_;             // [n_vocab] logits before penalties
  std::vector<int32_t> counts_;        // [n_vocab] scratch for penalties
};

}  // namespace lumen::engine
