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
// Llama 3.1 call written as {"parameters": ..., "name": ...}) and tools
// whose schemas have no grammar. Qwen3-Coder's XML calls are constrained
// with their string values written as JSON strings (Qwen3CoderGrammar).

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
// tool.parallel. InvalidArgument (field "tool_choice") when a parameter
// schema cannot be compiled (e.g. a remote $ref), or, for Qwen3-Coder's
// XML, is not one object schema with properties.
absl::StatusOr<std::string> ToolCallGrammar(chat::ToolCallFormat format,
                                            const ToolRequest& tool);

// The text that begins a call in `format` and from which ToolCallGrammar's
// grammar (for tool_choice "required") matches the rest of the output: the
// lazy constraint's trigger in "auto". Markup triggers (<tool_call>,
// [TOOL_CALLS], <|tool_call|>) count anywhere; a bare JSON call ({"name",
// {"tool_calls") only at the start of the reply, where the parser looks
// for one (mid-reply it is JSON in the text).
struct ToolTrigger {
  std::string text;
  bool at_start = false;
};
ToolTrigger ToolCallTrigger(chat::ToolCallFormat format, bool parallel);

// A new call id: "call_" and 24 random letters and digits, as OpenAI's
// look; for Mistral, whose templates refuse any other id in the next turn,
// 9 letters and digits. Any thread.
std::string NewToolCallId(chat::ToolCallFormat format);

// The tool calls of one response as its text arrives, for every front end
// (gRPC's Generate and GenerateStream, HTTP's chat completions): the chat
// layer's ToolCallStreamParser holds back text that may begin call markup
// and sends each call in pieces (its name first, then its arguments as they
// grow); a call's first piece leaves with its id (the model's own, else
// NewToolCallId). One per response, used by one thread at a time.
class ToolCallOutput {
 public:
  explicit ToolCallOutput(chat::ToolCallFormat format)
      : format_(format), parser_(format) {}

  // Newly generated text -> the content and the call pieces that are
  // certain now.
  chat::ParsedOutput Push(absl::string_view text);
  // The end of the output: the held-back text as content, or the last
  // pieces of its calls.
  chat::ParsedOutput Finish();
  // A whole output at once: Push(text) and Finish(), pieces merged into
  // whole calls.
  chat::ParsedOutput PushAll(absl::string_view text);

  // The response's finish reason: "tool_calls" when it called a tool and
  // every call's arguments closed; else the engine's (e.g. "length" for a
  // call cut by max_tokens, as OpenAI reports it).
  std::string FinishReason(absl::string_view engine_reason) const;

 private:
  chat::ParsedOutput WithIds(chat::ParsedOutput parsed);

  const chat::ToolCallFormat format_;
  chat::ToolCallStreamParser parser_;
  int calls_ = 0;
};

}  // namespace lumen::server
