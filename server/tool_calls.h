#pragma once
// Tool calling on the shared request path (gRPC and HTTP alike): a
// GenerateRequest's tools_json / tool_choice_json / tool messages checked
// and turned into what the chat template renders, and the grammar that
// constrains the output to the model's tool-call format when a call is
// required. Pure functions; any thread.
//
// What is constrained: tool_choice "required" (one of the tools) and a named
// function (that tool): the whole output is the family's call markup whose
// arguments follow the tool's parameter schema (JSON Schema, the subset of
// docs/structured-output.md). "auto": the model may answer in text, but once
// it writes its family's call trigger (ToolCallTrigger) the rest of the
// output is constrained as in "required" (a lazy grammar, as llama.cpp's).
// Left free in "auto": a call whose markup never shows the trigger (e.g. a
// Llama 3.1 call written as {"parameters": ..., "name": ...}), tools whose
// schemas have no grammar, and every call in Qwen3-Coder's XML format,
// which has no constrained form.

#include <string>

#include "absl/status/statusor.h"
#include "chat/chat_messages.h"
#include "chat/tool_call_parser.h"
#include "chat/tool_validation.h"
#include "lumen/v1/inference.pb.h"

namespace lumen::server {

struct ToolRequest {
  chat::Json tools;  // the validated function tools; null for none
  chat::ToolChoice choice;
  bool parallel = true;  // parallel_tool_calls
  // Tools are offered and may be called (choice is not none).
  bool active() const {
    return !tools.is_null() && choice.mode != chat::ToolChoice::Mode::kNone;
  }
};

// Parses and validates the request's tools and tool choice.
// InvalidArgument naming the field (as FieldError, payload "tools[1]...",
// "tool_choice") for malformed JSON, non-function tools, bad parameter
// schemas, duplicate names, a choice naming an unknown tool.
absl::StatusOr<ToolRequest> ParseToolRequest(
    const lumen::v1::GenerateRequest& request);

// The request's messages in the shape chat templates take (OpenAI's, with
// tool_calls as a list and tool_call_id), checked: tool_calls_json must be a
// JSON list whose arguments are JSON text, every tool message must answer an
// earlier call. InvalidArgument naming the message ("messages[2].tool_calls
// ...") otherwise.
absl::StatusOr<chat::Json> ChatMessagesJson(
    const lumen::v1::GenerateRequest& request);

// GBNF (start rule root) for an output that is exactly the call(s) the
// choice requires, in `format`: one call, or one or more when
// tool.parallel. InvalidArgument (field "tool_choice") when the format has
// no constrained form (Qwen3-Coder's XML) or a parameter schema cannot be
// compiled (e.g. a $ref).
absl::StatusOr<std::string> ToolCallGrammar(chat::ToolCallFormat format,
                                            const ToolRequest& tool);

// The text that begins a call in `format` and from which ToolCallGrammar's
// grammar (for tool_choice "required") matches the rest of the output: the
// lazy constraint's trigger in "auto". Markup triggers (<tool_call>,
// [TOOL_CALLS], <|tool_call|>) count anywhere; a bare JSON call ({"name",
// {"tool_calls") only at the start of the reply, where the parser looks
// for one (mid-reply it is JSON in the text). Empty text for a format with
// no constrained form.
struct ToolTrigger {
  std::string text;
  bool at_start = false;
};
ToolTrigger ToolCallTrigger(chat::ToolCallFormat format, bool parallel);

// "call_" and 24 random letters and digits, as OpenAI's call ids look. Any
// thread.
std::string NewToolCallId();

// The tool calls of one response as its text arrives, for every front end
// (gRPC's Generate and GenerateStream, HTTP's chat completions): the chat
// layer's ToolCallStreamParser holds back text that may begin call markup
// and parses completed calls; each call leaves with its id (the model's own,
// else NewToolCallId). One per response, used by one thread at a time.
class ToolCallOutput {
 public:
  explicit ToolCallOutput(chat::ToolCallFormat format) : parser_(format) {}

  // Newly generated text -> the content and the calls that are certain now.
  chat::ParsedOutput Push(absl::string_view text);
  // The end of the output: the held-back text as content, or its last calls.
  chat::ParsedOutput Finish();
  // A whole output at once: Push(text) and Finish() merged.
  chat::ParsedOutput PushAll(absl::string_view text);

  // Calls emitted so far: the response's finish reason is "tool_calls" when
  // there was one.
  int calls() const { return calls_; }

 private:
  chat::ParsedOutput WithIds(chat::ParsedOutput parsed);

  chat::ToolCallStreamParser parser_;
  int calls_ = 0;
};

}  // namespace lumen::server
