#pragma once
// The HTTP side of `lumen bench --api http`: the same workload as the gRPC
// side, sent to lumend's OpenAI-compatible API (POST /v1/completions with
// stream and stream_options.include_usage), one keep-alive connection per
// client thread.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace lumen::tools {

// One streamed request's outcome, as the bench counts it.
struct BenchStream {
  std::string error;  // "" on success, else a label ("HTTP_429", ...)
  int64_t completion_tokens = 0;
  std::optional<std::chrono::steady_clock::time_point> first_text;
  // Sent again on a new connection: the kept-alive one had been closed by
  // the server (HttpBenchClient::Stream).
  bool resent = false;
};

class HttpBenchClient {
 public:
  // `addr` is HOST:PORT; `api_key` may be empty. One thread per client.
  HttpBenchClient(const std::string& addr, const std::string& api_key);
  ~HttpBenchClient();

  // Streams a completion of `prompt` (greedy, EOS ignored).
  BenchStream Stream(const std::string& model, const std::string& prompt,
                     int64_t max_tokens);
  // The prompt's length in tokens, from the usage of a 1-token completion
  // (the OpenAI API has no tokenize route).
  absl::StatusOr<int64_t> CountPromptTokens(const std::string& model,
                                            const std::string& prompt);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lumen::tools
