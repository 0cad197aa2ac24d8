#pragma once
// Engine output -> OpenAI response JSON: the chat.completion and
// text_completion objects, their streaming chunks (chat.completion.chunk,
// text_completion), usage, log-probabilities in each endpoint's shape, and
// Lumen's extra fields (citations of the RAG passages, timings).
//
// One CompletionFormatter per response: it holds what every object of that
// response shares (id, created, model) and the running text offset of
// completion logprobs. Used by one thread at a time.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chat/tool_call_parser.h"
#include "engine/generation.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "retrieval/knowledge_store.h"
#include "server/http/openai_error.h"
#include "server/http/openai_request.h"
#include "server/tool_calls.h"

namespace lumen::server::http {

// OpenAI's finish_reason for Lumen's: "stop_sequence" is "stop"; "stop" and
// "length" stay; anything else passes through.
std::string OpenAiFinishReason(const std::string& finish_reason);

// {"prompt_tokens", "completion_tokens", "total_tokens",
//  "prompt_tokens_details": {"cached_tokens"}}.
JsonOut UsageJson(const engine::Usage& usage);

// Lumen's extension: {"collection", "document_id", "chunk_id", "score",
// "source", "title", "metadata", "text", "start", "end"} per passage.
JsonOut CitationsJson(const std::vector<retrieval::ChunkHit>& citations);

struct FormatOptions {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string id;       // "chatcmpl-N" or "cmpl-N"
  int64_t created = 0;  // Unix seconds
  std::string model;
  // Renders logprob alternatives (token ids) as text; required with
  // logprobs.
  const engine::Tokenizer* tokenizer = nullptr;
  bool logprobs = false;
  int top_logprobs = 0;
  bool include_usage = false;  // stream: chunks carry "usage": null
  bool rag = false;            // the request retrieved passages
  // The request offered tools: the output is parsed in this format into
  // message.tool_calls (streaming: tool_calls deltas, markup held back).
  std::optional<chat::ToolCallFormat> tool_format;
};

class CompletionFormatter {
 public:
  explicit CompletionFormatter(FormatOptions options);

  // The whole response of a non-streaming request: `all` is every delta
  // merged (text, logprobs, the final usage and finish reason).
  JsonOut Complete(const engine::GenerationDelta& all,
                   const std::vector<retrieval::ChunkHit>& citations,
                   double retrieval_seconds);

  // Streaming. The first chunk: chat's {"role": "assistant"} delta, with the
  // citations when the request used RAG (completions send one only then).
  bool HasFirstChunk() const;
  JsonOut FirstChunk(const std::vector<retrieval::ChunkHit>& citations);
  // Text and logprobs of `d`, or null when it holds neither. With tools,
  // the text's content and completed tool calls (each call whole, in one
  // delta with index, id, type, function.name and function.arguments);
  // text that may begin call markup is held back.
  JsonOut DeltaChunk(const engine::GenerationDelta& d);
  // With tools, at the end of the output: the held-back text as content or
  // the last calls; null when nothing was held back. Call before
  // FinishChunk.
  JsonOut FlushChunk();
  // The chunk with finish_reason (an empty delta) and Lumen's timings.
  JsonOut FinishChunk(const engine::GenerationDelta& last,
                      double retrieval_seconds);
  // stream_options.include_usage: {"choices": [], "usage": {...}}.
  JsonOut UsageChunk(const engine::Usage& usage);

 private:
  JsonOut Envelope(bool chunk) const;
  JsonOut Logprobs(const std::vector<engine::LogprobEntry>& entries);
  // {"index": 0, key: body, "logprobs", "finish_reason"}; key is
  // "message", "delta" or "text".
  JsonOut Choice(const char* key, JsonOut body, const JsonOut& logprobs,
                 const JsonOut& finish_reason) const;

  // The chat "message" of a whole output: content, or content (null when
  // empty) and tool_calls when the request offered tools.
  JsonOut Message(const std::string& text, bool* has_calls);
  // OpenAI's tool_calls entries. `delta`: stream pieces, each with its
  // call's index; a call's first piece has id, type and name, later ones
  // only function.arguments to append.
  static JsonOut ToolCallsJson(const std::vector<chat::ToolCall>& calls,
                               bool delta);
  JsonOut ParsedDelta(const chat::ParsedOutput& parsed,
                      const JsonOut& logprobs);

  FormatOptions options_;
  // With tools: parses the output (shared with the gRPC front end).
  std::optional<ToolCallOutput> tool_output_;
  // Completions logprobs: characters of text before the next token.
  int64_t text_offset_ = 0;
  bool first_token_seen_ = false;
};

}  // namespace lumen::server::http
