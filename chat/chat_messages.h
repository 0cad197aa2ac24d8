#pragma once
// OpenAI-style chat messages checked and put in the shape chat templates
// expect (what Hugging Face transformers and llama.cpp hand to a template):
// tool-call arguments parsed from their JSON string into objects, content
// given as a list of text parts joined into one string unless the template
// renders such lists itself, null content replaced by "" for templates that
// cannot print null. Pure functions, thread-safe.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "chat/jinja/value.h"

namespace lumen::chat {

using Json = jinja::Json;

// What a template accepts, found by rendering probes (ChatTemplate).
struct MessageFormat {
  bool typed_content = false;  // content may stay a list of text parts
  bool null_content = true;    // content may be null
};

// InvalidArgument "<field> <problem>": how the checks of a chat request
// (messages, tools, tool choice) name what is wrong.
absl::Status FieldError(const std::string& field, absl::string_view problem);

// Returns the messages to render. InvalidArgument naming the field
// ("messages[2].tool_calls[0].function.arguments is not valid JSON: ...")
// for anything malformed: not a non-empty array of objects, a role that is
// not a string, content that is not a string, null or a list of text parts,
// tool calls without a function name.
absl::StatusOr<Json> NormalizeMessages(const Json& messages,
                                       const MessageFormat& format);

}  // namespace lumen::chat
