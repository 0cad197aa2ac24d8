#include "server/quota.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lumen::server {

namespace {

absl::Status Exhausted(const std::string& message, double retry_seconds) {
  absl::Status s = absl::ResourceExhaustedError(message);
  const int64_t seconds =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(retry_seconds)));
  s.SetPayload(kRetryAfterPayload, absl::Cord(absl::StrCat(seconds)));
  return s;
}

}  // namespace

std::optional<int64_t> RetryAfterOf(const absl::Status& status) {
  auto p = status.GetPayload(kRetryAfterPayload);
  int64_t seconds = 0;
  if (!p || !absl::SimpleAtoi(std::string(*p), &seconds)) return std::nullopt;
  return seconds;
}

absl::Status ParseQuotaField(const std::string& field, QuotaLimits* limits) {
  const size_t eq = field.find('=');
  int64_t value = 0;
  if (eq == std::string::npos ||
      !absl::SimpleAtoi(field.substr(eq + 1), &value) || value < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", field, "' is not LIMIT=N with N a whole number >= 0"));
  }
  const std::string name = field.substr(0, eq);
  if (name == "requests_per_minute") {
    limits->requests_per_minute = value;
  } else if (name == "tokens_per_minute") {
    limits->tokens_per_minute = value;
  } else if (name == "concurrent_requests") {
    limits->concurrent_requests = value;
  } else if (name == "max_prompt_tokens") {
    limits->max_prompt_tokens = value;
  } else if (name == "max_tokens") {
    limits->max_tokens = value;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown limit '", name,
        "' (requests_per_minute, tokens_per_minute, concurrent_requests, "
        "max_prompt_tokens, max_tokens)"));
  }
  return absl::OkStatus();
}

KeyQuota::KeyQuota(std::string tenant, std::string fingerprint,
                   QuotaLimits limits)
    : tenant_(std::move(tenant)),
      fingerprint_(std::move(fingerprint)),
      limits_(limits),
      request_bucket_(static_cast<double>(limits.requests_per_minute)),
      token_bucket_(static_cast<double>(limits.tokens_per_minute)),
      refilled_(Clock::now()) {}

void KeyQuota::Refill(Clock::time_point now) {
  const double minutes =
      std::chrono::duration<double>(now - refilled_).count() / 60.0;
  refilled_ = now;
  if (limits_.requests_per_minute > 0) {
    request_bucket_ = std::min<double>(
        limits_.requests_per_minute,
        request_bucket_ + minutes * limits_.requests_per_minute);
  }
  if (limits_.tokens_per_minute > 0) {
    token_bucket_ =
        std::min<double>(limits_.tokens_per_minute,
                         token_bucket_ + minutes * limits_.tokens_per_minute);
  }
}

absl::Status KeyQuota::Admit(int64_t max_tokens, std::string* limit) {
  absl::MutexLock lock(&mu_);
  Refill(Clock::now());
  const QuotaLimits& l = limits_;
  absl::Status refused;
  if (l.max_tokens > 0 && max_tokens > l.max_tokens) {
    *limit = "max_tokens";
    refused = absl::ResourceExhaustedError(
        absl::StrCat("max_tokens ", max_tokens,
                     " exceeds this key's limit max_tokens=", l.max_tokens));
  } else if (l.concurrent_requests > 0 &&
             usage_.concurrent >= l.concurrent_requests) {
    *limit = "concurrent_requests";
    refused = Exhausted(absl::StrCat("this key already has ", usage_.concurrent,
                                     " requests in flight (limit "
                                     "concurrent_requests=",
                                     l.concurrent_requests, ")"),
                        1);
  } else if (l.requests_per_minute > 0 && request_bucket_ < 1.0) {
    *limit = "requests_per_minute";
    refused = Exhausted(absl::StrCat("this key's limit requests_per_minute=",
                                     l.requests_per_minute, " is reached"),
                        (1.0 - request_bucket_) * 60.0 / l.requests_per_minute);
  } else if (l.tokens_per_minute > 0 && token_bucket_ <= 0) {
    *limit = "tokens_per_minute";
    refused = Exhausted(absl::StrCat("this key's limit tokens_per_minute=",
                                     l.tokens_per_minute, " is reached"),
                        (1.0 - token_bucket_) * 60.0 / l.tokens_per_minute);
  }
  if (!refused.ok()) {
    ++usage_.rejections;
    return refused;
  }
  if (l.requests_per_minute > 0) request_bucket_ -= 1.0;
  ++usage_.requests;
  ++usage_.concurrent;
  return absl::OkStatus();
}

absl::Status KeyQuota::CheckPrompt(int64_t prompt_tokens, std::string* limit) {
  absl::MutexLock lock(&mu_);
  if (limits_.max_prompt_tokens > 0 &&
      prompt_tokens > limits_.max_prompt_tokens) {
    *limit = "max_prompt_tokens";
    return absl::ResourceExhaustedError(
        absl::StrCat("prompt of ", prompt_tokens,
                     " tokens exceeds this key's limit max_prompt_tokens=",
                     limits_.max_prompt_tokens));
  }
  return absl::OkStatus();
}

void KeyQuota::Release(int64_t tokens) {
  absl::MutexLock lock(&mu_);
  Refill(Clock::now());
  --usage_.concurrent;
  usage_.generated_tokens += tokens;
  if (limits_.tokens_per_minute > 0)
    token_bucket_ -= static_cast<double>(tokens);
}

void KeyQuota::CountRejection() {
  absl::MutexLock lock(&mu_);
  ++usage_.rejections;
}

void KeyQuota::SetLimits(const QuotaLimits& limits) {
  absl::MutexLock lock(&mu_);
  Refill(Clock::now());
  // A limit that did not exist starts with a full bucket.
  request_bucket_ =
      limits_.requests_per_minute == 0
          ? limits.requests_per_minute
          : std::min<double>(request_bucket_, limits.requests_per_minute);
  token_bucket_ =
      limits_.tokens_per_minute == 0
          ? limits.tokens_per_minute
          : std::min<double>(token_bucket_, limits.tokens_per_minute);
  limits_ = limits;
}

QuotaLimits KeyQuota::limits() const {
  absl::MutexLock lock(&mu_);
  return limits_;
}

QuotaUsage KeyQuota::usage() const {
  absl::MutexLock lock(&mu_);
  return usage_;
}

}  // namespace lumen::server
