#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lumen::engine {

namespace {

// log-softmax of one logit given the row's max and log-sum-exp.
void LogSoftmax(std::span<const float> logits, float* max_out, float* lse_out) {
  float mx = -INFINITY;
  for (float v : logits) mx = std::max(mx, v);
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v - mx));
  *max_out = mx;
  *lse_out = static_cast<float>(std::log(sum));
}

}  // namespace

int32_t Sampler::Sample(std::span<float> logits, SamplerState* state,
                        int32_t top_logprobs, TokenLogprob* chosen,
                        std::vector<TokenLogprob>* alternatives) {
  return SampleFiltered(logits, /*masked=*/false, state, top_logprobs, chosen,
                        alternatives);
}

absl::StatusOr<int32_t> Sampler::SampleMasked(
    std::span<float> logits, std::span<const uint32_t> allowed,
    SamplerState* state, int32_t top_logprobs, TokenLogprob* chosen,
    std::vector<TokenLogprob>* alternatives) {
  const size_t n = logits.size();
  if (allowed.size() * 32 < n) {
    return absl::InternalError(absl::StrCat("token mask of ", allowed.size(),
                                            " words for ", n, " logits"));
  }
  size_t num_allowed = 0;
  for (size_t i = 0; i < n; ++i) {
    if ((allowed[i >> 5] >> (i & 31)) & 1) {
      ++num_allowed;
    } else {
      logits[i] = -INFINITY;
    }
  }
  if (num_allowed == 0) {
    return absl::InternalError("the output constraint allows no token");
  }
  return SampleFiltered(logits, /*masked=*/true, state, top_logprobs, chosen,
                        alternatives);
}

int32_t Sampler::SampleFiltered(std::span<float> logits, bool masked,
                                SamplerState* state, int32_t top_logprobs,
                                TokenLogprob* chosen,
                                std::vector<TokenLogprob>* alternatives) {
  const SamplingParams& p = state->params();
  const int32_t n = static_cast<int32_t>(logits.size());

  // Log-probabilities are reported from the model's raw distribution,
  // before penalties and temperature.
  float raw_max = 0.0f, raw_lse = 0.0f;
  if (top_logprobs > 0) {
    LogSoftmax(logits, &raw_max, &raw_lse);
    raw_.assign(logits.begin(), logits.end());
    if (alternatives != nullptr)
      TopLogprobs(top_logprobs, raw_max, raw_lse, alternatives);
  }

  // Penalties over generated tokens.
  const bool penalize = p.repetition_penalty != 1.0f ||
                        p.presence_penalty != 0.0f ||
                        p.frequency_penalty != 0.0f;
  if (penalize && !state->history().empty()) {
    if (static_cast<int32_t>(counts_.size()) < n) counts_.assign(n, 0);
    for (int32_t t : state->history()) {
      if (t >= 0 && t < n) counts_[t]++;
    }
    for (int32_t t : state->history()) {
      if (t < 0 || t >= n || counts_[t] == 0) continue;
      float& v = logits[t];
      if (p.repetition_penalty != 1.0f) {
        v = v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty;
      }
      v -= counts_[t] * p.frequency_penalty + p.presence_penalty;
      counts_[t] = 0;  // each token penalized once
    }
  }

  int32_t token = 0;
  if (p.temperature <= 0.0f) {
    token = static_cast<int32_t>(
        std::max_element(logits.begin(), logits.end()) - logits.begin());
  } else {
    // Masked-out tokens (-inf) are not candidates at all, so no rounding in
    // the draw below can land on one.
    candidates_.resize(n);
    int32_t num_candidates = 0;
    for (int32_t i = 0; i < n; ++i) {
      if (masked && logits[i] == -INFINITY) continue;
      candidates_[num_candidates++] = {i, logits[i] / p.temperature};
    }
    candidates_.resize(num_candidates);
    auto by_logit = [](const Candidate& a, const Candidate& b) {
      return a.logit > b.logit || (a.logit == b.logit && a.token < b.token);
    };
    int32_t keep = num_candidates;
    if (p.top_k > 0 && p.top_k < num_candidates) {
      std::partial_sort(candidates_.begin(), candidates_.begin() + p.top_k,
                        candidates_.end(), by_logit);
      keep = p.top_k;
    } else {
      std::sort(candidates_.begin(), candidates_.end(), by_logit);
    }
    // Softmax over the kept candidates (sorted descending).
    const float mx = candidates_[0].logit;
    double sum = 0.0;
    for (int32_t i = 0; i < keep; ++i) {
      candidates_[i].logit =
          std::exp(candidates_[i].logit - mx);  // now a weight
      sum += candidates_[i].logit;
    }
    if (p.min_p > 0.0f) {
      const float floor = p.min_p * candidates_[0].logit;
      int32_t k = 1;
      while (k < keep && candidates_[k].logit >= floor) ++k;
      sum = 0.0;
      for (int32_t i = 0; i < k; ++i) sum += candidates_[i].logit;
      keep = k;
    }
    if (p.top_p < 1.0f) {
      double cum = 0.0;
      int32_t k = 0;
      while (k < keep) {
        cum += candidates_[k].logit / sum;
        ++k;
        if (cum >= p.top_p) break;
      }
      double kept = 0.0;
      for (int32_t i = 0; i < k; ++i) kept += candidates_[i].logit;
      sum = kept;
      keep = k;
    }
    std::uniform_real_distribution<double> uniform(0.0, sum);
    const double r = uniform(state->rng());
    double cum = 0.0;
    token = candidates_[keep - 1].token;
    for (int32_t i = 0; i < keep; ++i) {
      cum += candidates_[i].logit;
      if (r < cum) {
        token = candidates_[i].token;
        break;
      }
    }
  }

  if (top_logprobs > 0 && chosen != nullptr) {
    *chosen = {token, raw_[token] - raw_max - raw_lse};
  }
  state->Accept(token);
  return token;
}

void Sampler::TopLogprobs(int32_t k, float raw_max, float raw_lse,
                          std::vector<TokenLogprob>* out) const {
  out->clear();
  const int32_t n = static_cast<int32_t>(raw_.size());
  k = std::min(k, n);
  auto worse = [](const TokenLogprob& a, const TokenLogprob& b) {
    return a.logprob > b.logprob;  // min-heap on logprob
  };
  for (int32_t i = 0; i < n; ++i) {
    const float lp = raw_[i] - raw_max - raw_lse;
    if (lp == -INFINITY) continue;  // masked out by a constraint
    if (static_cast<int32_t>(out->size()) < k) {
      out->push_back({i, lp});
      std::push_heap(out->begin(), out->end(), worse);
    } else if (lp > out->front().logprob) {
      std::pop_heap(out->begin(), out->end(), worse);
      out->back() = {i, lp};
      std::push_heap(out->begin(), out->end(), worse);
    }
  }
  std::sort(out->begin(), out->end(), worse);
}

}  // namespace lumen::engine
