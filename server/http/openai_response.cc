#include "server/http/openai_response.h"

#include <algorithm>
#include <span>

#include "base/unicode.h"

namespace lumen::server::http {

namespace {

bool IsChat(const FormatOptions& o) {
  return o.endpoint == Endpoint::kChatCompletions;
}

JsonOut Bytes(const std::string& s) {
  JsonOut out = JsonOut::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

// Characters (code points) in UTF-8 bytes, counting lead bytes: offsets in
// characters, as OpenAI gives them, even when a token holds part of one.
int64_t CountCharacters(const std::string& bytes) {
  int64_t n = 0;
  for (unsigned char c : bytes) n += (c & 0xC0) != 0x80;
  return n;
}

JsonOut TimingsJson(const engine::Timings& t, double retrieval_seconds) {
  return {{"queue_seconds", t.queue_seconds},
          {"time_to_first_token_seconds", t.time_to_first_token_seconds},
          {"time_per_output_token_seconds", t.time_per_output_token_seconds},
          {"total_seconds", t.total_seconds},
          {"retrieval_seconds", retrieval_seconds}};
}

}  // namespace

std::string OpenAiFinishReason(const std::string& finish_reason) {
  if (finish_reason == "stop_sequence") return "stop";
  return finish_reason;
}

JsonOut UsageJson(const engine::Usage& u) {
  return {
      {"prompt_tokens", u.prompt_tokens},
      {"completion_tokens", u.completion_tokens},
      {"total_tokens", u.prompt_tokens + u.completion_tokens},
      {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens}}}};
}

JsonOut CitationsJson(const std::vector<retrieval::ChunkHit>& citations) {
  JsonOut out = JsonOut::array();
  for (const retrieval::ChunkHit& h : citations) {
    JsonOut metadata = JsonOut::object();
    if (!h.metadata_json.empty()) {
      // Stored by the knowledge store as a JSON object; anything else is
      // passed on as the text it is.
      metadata = JsonOut::parse(h.metadata_json, nullptr, false);
      if (metadata.is_discarded()) metadata = h.metadata_json;
    }
    out.push_back({{"collection", h.collection},
                   {"document_id", h.document_id},
                   {"chunk_id", h.chunk_id},
                   {"score", h.score},
                   {"source", h.source},
                   {"title", h.title},
                   {"metadata", std::move(metadata)},
                   {"text", h.text},
                   {"start", h.start},
                   {"end", h.end}});
  }
  return out;
}

CompletionFormatter::CompletionFormatter(FormatOptions options)
    : options_(std::move(options)) {
  if (options_.tool_format && IsChat(options_))
    tool_output_.emplace(*options_.tool_format);
}

JsonOut CompletionFormatter::ToolCallsJson(
    const std::vector<chat::ToolCall>& calls, bool delta) {
  JsonOut out = JsonOut::array();
  for (const chat::ToolCall& c : calls) {
    JsonOut call = JsonOut::object();
    if (delta) call["index"] = c.index;
    if (!delta || !c.name.empty()) {  // whole, or a call's first piece
      call["id"] = c.id;
      call["type"] = "function";
      call["function"] = {{"name", c.name}, {"arguments", c.arguments}};
    } else {  // a later piece: more of the arguments
      call["function"] = {{"arguments", c.arguments}};
    }
    out.push_back(std::move(call));
  }
  return out;
}

JsonOut CompletionFormatter::Message(const std::string& text, bool* has_calls) {
  *has_calls = false;
  if (!tool_output_) {
    return {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  }
  chat::ParsedOutput parsed = tool_output_->PushAll(text);
  JsonOut message = {{"role", "assistant"}};
  message["content"] = parsed.tool_calls.empty() || !parsed.content.empty()
                           ? JsonOut(parsed.content)
                           : JsonOut(nullptr);
  message["refusal"] = nullptr;
  if (!parsed.tool_calls.empty()) {
    *has_calls = true;
    message["tool_calls"] = ToolCallsJson(parsed.tool_calls, /*delta=*/false);
  }
  return message;
}

JsonOut CompletionFormatter::ParsedDelta(const chat::ParsedOutput& parsed,
                                         const JsonOut& logprobs) {
  if (parsed.empty() && logprobs.is_null()) return nullptr;
  JsonOut delta = JsonOut::object();
  if (!parsed.content.empty()) delta["content"] = parsed.content;
  if (!parsed.tool_calls.empty())
    delta["tool_calls"] = ToolCallsJson(parsed.tool_calls, /*delta=*/true);
  JsonOut out = Envelope(/*chunk=*/true);
  out["choices"] =
      JsonOut::array({Choice("delta", std::move(delta), logprobs, nullptr)});
  if (options_.include_usage) out["usage"] = nullptr;
  return out;
}

JsonOut CompletionFormatter::FlushChunk() {
  if (!tool_output_) return nullptr;
  return ParsedDelta(tool_output_->Finish(), nullptr);
}

JsonOut CompletionFormatter::Envelope(bool chunk) const {
  const char* object =
      IsChat(options_) ? (chunk ? "chat.completion.chunk" : "chat.completion")
                       : "text_completion";
  return {{"id", options_.id},
          {"object", object},
          {"created", options_.created},
          {"model", options_.model}};
}

JsonOut CompletionFormatter::Choice(const char* key, JsonOut body,
                                    const JsonOut& logprobs,
                                    const JsonOut& finish_reason) const {
  return {{"index", 0},
          {key, std::move(body)},
          {"logprobs", logprobs},
          {"finish_reason", finish_reason}};
}

// Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
// Completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}.
JsonOut CompletionFormatter::Logprobs(
    const std::vector<engine::LogprobEntry>& entries) {
  if (!options_.logprobs) return nullptr;
  const engine::Tokenizer& tok = *options_.tokenizer;
  const size_t top = static_cast<size_t>(options_.top_logprobs);
  if (IsChat(options_)) {
    JsonOut content = JsonOut::array();
    for (const engine::LogprobEntry& e : entries) {
      JsonOut alternatives = JsonOut::array();
      for (size_t i = 0; i < std::min(top, e.top.size()); ++i) {
        alternatives.push_back(
            {{"token", tok.TokenToDisplayPiece(e.top[i].token)},
             {"logprob", e.top[i].logprob},
             {"bytes", Bytes(tok.TokenToPiece(e.top[i].token))}});
      }
      content.push_back({{"token", tok.TokenToDisplayPiece(e.token_id)},
                         {"logprob", e.logprob},
                         {"bytes", Bytes(e.token)},
                         {"top_logprobs", std::move(alternatives)}});
    }
    return {{"content", std::move(content)}, {"refusal", nullptr}};
  }
  JsonOut tokens = JsonOut::array(), token_logprobs = JsonOut::array(),
          top_logprobs = JsonOut::array(), offsets = JsonOut::array();
  for (const engine::LogprobEntry& e : entries) {
    tokens.push_back(tok.TokenToDisplayPiece(e.token_id));
    token_logprobs.push_back(e.logprob);
    JsonOut alternatives = JsonOut::object();
    for (size_t i = 0; i < std::min(top, e.top.size()); ++i) {
      alternatives[tok.TokenToDisplayPiece(e.top[i].token)] = e.top[i].logprob;
    }
    top_logprobs.push_back(top > 0 ? std::move(alternatives)
                                   : JsonOut(nullptr));
    offsets.push_back(text_offset_);
    // The text starts without the leading space an SPM vocabulary puts on
    // the first piece: its length is the decoded one.
    const std::string piece =
        first_token_seen_
            ? e.token
            : tok.Decode(std::span<const int32_t>(&e.token_id, 1));
    first_token_seen_ = true;
    text_offset_ += CountCharacters(piece);
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top_logprobs)},
          {"text_offset", std::move(offsets)}};
}

JsonOut CompletionFormatter::Complete(
    const engine::GenerationDelta& all,
    const std::vector<retrieval::ChunkHit>& citations,
    double retrieval_seconds) {
  JsonOut out = Envelope(/*chunk=*/false);
  JsonOut choice;
  if (IsChat(options_)) {
    bool has_calls = false;
    JsonOut message = Message(all.text, &has_calls);
    // "tool_calls" when the model called tools (ToolCallOutput::FinishReason).
    const std::string reason = OpenAiFinishReason(all.finish_reason);
    choice = Choice("message", std::move(message), Logprobs(all.logprobs),
                    has_calls ? tool_output_->FinishReason(reason) : reason);
  } else {
    choice = Choice("text", all.text, Logprobs(all.logprobs),
                    OpenAiFinishReason(all.finish_reason));
  }
  out["choices"] = JsonOut::array({std::move(choice)});
  out["usage"] = UsageJson(all.usage);
  if (options_.rag) out["citations"] = CitationsJson(citations);
  out["timings"] = TimingsJson(all.timings, retrieval_seconds);
  return out;
}

bool CompletionFormatter::HasFirstChunk() const {
  return IsChat(options_) || options_.rag;
}

JsonOut CompletionFormatter::FirstChunk(
    const std::vector<retrieval::ChunkHit>& citations) {
  JsonOut out = Envelope(/*chunk=*/true);
  out["choices"] = JsonOut::array(
      {IsChat(options_)
           ? Choice("delta", {{"role", "assistant"}, {"content", ""}}, nullptr,
                    nullptr)
           : Choice("text", "", nullptr, nullptr)});
  if (options_.include_usage) out["usage"] = nullptr;
  if (options_.rag) out["citations"] = CitationsJson(citations);
  return out;
}

JsonOut CompletionFormatter::DeltaChunk(const engine::GenerationDelta& d) {
  if (d.text.empty() && (d.logprobs.empty() || !options_.logprobs))
    return nullptr;
  if (tool_output_) {
    return ParsedDelta(tool_output_->Push(d.text), Logprobs(d.logprobs));
  }
  JsonOut out = Envelope(/*chunk=*/true);
  out["choices"] = JsonOut::array(
      {IsChat(options_)
           ? Choice("delta", {{"content", d.text}}, Logprobs(d.logprobs),
                    nullptr)
           : Choice("text", d.text, Logprobs(d.logprobs), nullptr)});
  if (options_.include_usage) out["usage"] = nullptr;
  return out;
}

JsonOut CompletionFormatter::FinishChunk(const engine::GenerationDelta& last,
                                         double retrieval_seconds) {
  JsonOut out = Envelope(/*chunk=*/true);
  std::string reason = OpenAiFinishReason(last.finish_reason);
  if (tool_output_) reason = tool_output_->FinishReason(reason);
  out["choices"] = JsonOut::array(
      {IsChat(options_) ? Choice("delta", JsonOut::object(), nullptr, reason)
                        : Choice("text", "", nullptr, reason)});
  if (options_.include_usage) out["usage"] = nullptr;
  out["timings"] = TimingsJson(last.timings, retrieval_seconds);
  return out;
}

JsonOut CompletionFormatter::UsageChunk(const engine::Usage& usage) {
  JsonOut out = Envelope(/*chunk=*/true);
  out["choices"] = JsonOut::array();
  out["usage"] = UsageJson(usage);
  return out;
}

}  // namespace lumen::server::http
