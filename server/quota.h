#pragma once
// Per-key quotas of the --api-keys file: requests and generated tokens per
// minute (token buckets), concurrent requests, and per-request caps on
// prompt and generated tokens. Checked before a request is queued;
// exceeding one is RESOURCE_EXHAUSTED naming the limit, with a retry-after
// hint (seconds) attached as the payload kRetryAfterPayload. Thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lumen::server {

// Status payload type URL: seconds after which a retry may succeed.
inline constexpr char kRetryAfterPayload[] = "lumen.dev/retry-after";
// The retry-after seconds attached to a status, if any.
std::optional<int64_t> RetryAfterOf(const absl::Status& status);

struct QuotaLimits {
  int64_t requests_per_minute = 0;  // 0: unlimited (every field)
  int64_t tokens_per_minute = 0;    // generated tokens
  int64_t concurrent_requests = 0;
  int64_t max_prompt_tokens = 0;
  int64_t max_tokens = 0;  // per request
  bool any() const {
    return requests_per_minute || tokens_per_minute || concurrent_requests ||
           max_prompt_tokens || max_tokens;
  }
};

// Parses "NAME=VALUE" (requests_per_minute, tokens_per_minute,
// concurrent_requests, max_prompt_tokens, max_tokens) into `limits`.
// InvalidArgument naming the problem.
absl::Status ParseQuotaField(const std::string& field, QuotaLimits* limits);

// What one key has used, for GetStats.
struct QuotaUsage {
  int64_t requests = 0;          // admitted
  int64_t generated_tokens = 0;  // by finished requests
  int64_t concurrent = 0;        // in flight now
  int64_t rejections = 0;
};

// The state of one API key. Requests hold a Lease while in flight.
class KeyQuota {
 public:
  KeyQuota(std::string tenant, std::string fingerprint, QuotaLimits limits);

  // Admits one request asking for up to `max_tokens` new tokens:
  // RESOURCE_EXHAUSTED naming the exhausted limit (and a retry-after
  // payload) otherwise. On OK the caller must call Release exactly once.
  // `limit` receives the limit's name on rejection (for the metric).
  absl::Status Admit(int64_t max_tokens, std::string* limit);
  // After building the prompt: RESOURCE_EXHAUSTED over max_prompt_tokens.
  absl::Status CheckPrompt(int64_t prompt_tokens, std::string* limit);
  // The request ended having generated `tokens` (charged to the per-minute
  // token bucket).
  void Release(int64_t tokens);
  // A limit was hit after Admit (e.g. CheckPrompt): counts the rejection.
  void CountRejection();

  // Replaces the limits (the keys file was reloaded); state is kept.
  void SetLimits(const QuotaLimits& limits);
  QuotaLimits limits() const;
  QuotaUsage usage() const;
  const std::string& tenant() const { return tenant_; }
  // The first 12 hex digits of the key's SHA-256: names a key without
  // showing it.
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  // Refills the buckets up to `now`.
  // A monotonic clock: a wall-clock step back must not drain the buckets.
  using Clock = std::chrono::steady_clock;
  void Refill(Clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string tenant_;
  const std::string fingerprint_;
  mutable absl::Mutex mu_;
  QuotaLimits limits_ ABSL_GUARDED_BY(mu_);
  double request_bucket_ ABSL_GUARDED_BY(mu_) = 0;  // requests available
  double token_bucket_ ABSL_GUARDED_BY(mu_) = 0;    // may go negative
  Clock::time_point refilled_ ABSL_GUARDED_BY(mu_);
  QuotaUsage usage_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumen::server
