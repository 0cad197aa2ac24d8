#pragma once
// OpenAI request JSON -> lumen::v1::GenerateRequest, the canonical request
// every front end hands to the GeneratePipeline. Only the wire format is
// translated here: field types, OpenAI's spellings (max_completion_tokens,
// stop as a string, content parts, token-id prompts, response_format) and
// what Lumen cannot do (n > 1, logit_bias: 400 naming the field). Tools and
// tool messages travel as JSON text (tools_json, tool_calls_json) and are
// validated on the shared path (server/tool_calls.h).
// Ranges and prompt rules are the shared request builder's
// (server/request_builder.h); its errors name proto paths, which ParamOf
// turns back into the names the client used. Pure functions; any thread.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lumen/v1/inference.pb.h"
#include "server/http/json_fields.h"

namespace lumen::server::http {

enum class Endpoint {
  kCompletions,      // POST /v1/completions
  kChatCompletions,  // POST /v1/chat/completions
};

struct OpenAiRequest {
  Endpoint endpoint = Endpoint::kChatCompletions;
  lumen::v1::GenerateRequest request;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;       // return the chosen tokens' log-probabilities
  int top_logprobs = 0;        // alternatives returned per token
  // Proto paths (or their prefixes) and the names the client used for them,
  // the last match wins; other "sampling.X" paths become "X".
  std::vector<std::pair<std::string, std::string>> renames;

  // The OpenAI parameter for a proto field path from the request builder
  // ("sampling.max_tokens" -> "max_completion_tokens" when the client used
  // that name; "prompt_token_ids[3]" -> "prompt[3]"); "" for "".
  std::string ParamOf(absl::string_view proto_path) const;
};

// Translates a /v1/chat/completions body. InvalidArgument naming the member
// (as the field payload of request_builder.h) for a wrong type, an
// unsupported feature or a malformed message.
absl::StatusOr<OpenAiRequest> FromChatCompletion(const Json& body);

// Translates a /v1/completions body: prompt as a string or token ids (one
// prompt per request).
absl::StatusOr<OpenAiRequest> FromCompletion(const Json& body);

}  // namespace lumen::server::http
