#pragma once
// Chat templates: the `tokenizer.chat_template` of a GGUF is recognized as one
// of the common families and rendered natively (no Jinja interpreter). An
// unrecognized template is an error naming the problem, never a guess.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumen::engine {

enum class ChatFamily {
  kChatML,
  kLlama2,
  kLlama3,
  kMistral,
  kGemma,
  kPhi3,
  kZephyr
};

struct ChatTurn {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

// "chatml", "llama2", "llama3", "mistral", "gemma", "phi3", "zephyr".
absl::string_view ChatFamilyName(ChatFamily family);
absl::StatusOr<ChatFamily> ChatFamilyFromName(absl::string_view name);

// Recognizes the family of a Jinja chat template by its markers.
// InvalidArgument when the text matches none (the message quotes its start).
absl::StatusOr<ChatFamily> DetectChatFamily(absl::string_view template_text);

// Renders the conversation followed by the assistant's generation prompt.
// `template_text` refines details (e.g. Qwen's default system prompt).
// InvalidArgument for an unknown role or an empty conversation.
absl::StatusOr<std::string> RenderChat(ChatFamily family,
                                       absl::string_view template_text,
                                       const std::vector<ChatTurn>& turns);

}  // namespace lumen::engine
