#pragma once
// The tool-calling fields of a chat request, checked before anything is
// rendered or generated: `tools`, `tool_choice` and the tool messages of the
// conversation. Every problem is InvalidArgument naming the field, as an
// HTTP 400 / INVALID_ARGUMENT can show it ("tools[2].function.name 'x'
// duplicates tools[0]"). Pure functions, thread-safe.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chat/chat_messages.h"

namespace lumen::chat {

// OpenAI function tools: [{"type": "function", "function": {"name": N,
// "description": D, "parameters": SCHEMA}}]. Names match
// ^[a-zA-Z0-9_-]{1,64}$ and are unique; parameters, when given, is a JSON
// Schema object of type "object" whose keywords are well formed. Null or
// absent tools are fine.
absl::Status ValidateTools(const Json& tools);

struct ToolChoice {
  enum class Mode { kAuto, kNone, kRequired, kFunction };
  Mode mode = Mode::kAuto;
  std::string function;  // kFunction: the tool that must be called
};

// "auto", "none", "required" or {"type": "function", "function": {"name":
// N}} with N one of `tools` (already validated). Null means auto with tools,
// none without. A choice that needs tools when there are none is an error.
absl::StatusOr<ToolChoice> ParseToolChoice(const Json& tool_choice,
                                           const Json& tools);

// Every "tool" message answers a call of an earlier assistant message:
// its tool_call_id names one of their tool_calls[].id.
absl::Status ValidateToolMessages(const Json& messages);

}  // namespace lumen::chat
