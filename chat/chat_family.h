#pragma once
// The family table: seven common chat formats rendered natively, for models
// whose file carries no template (or when --chat-template names a family).
// A model's own template is rendered by ChatTemplate (chat_template.h) with
// the Jinja engine. An unrecognized template is an error naming the problem,
// never a guess. Pure functions, thread-safe.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumen::chat {

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

// Renders the conversation, followed by the assistant's generation prompt
// when `add_generation_prompt`. `template_text` refines details (e.g. Qwen's
// default system prompt). InvalidArgument for an unknown role or an empty
// conversation.
absl::StatusOr<std::string> RenderChat(ChatFamily family,
                                       absl::string_view template_text,
                                       const std::vector<ChatTurn>& turns,
                                       bool add_generation_prompt = true);

}  // namespace lumen::chat
