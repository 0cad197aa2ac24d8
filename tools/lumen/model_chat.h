#pragma once
// Which chat template a model file renders with, for `lumen model inspect`,
// and the `lumen model render-chat` command (declared in commands.h).

#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/vocab.h"

namespace lumen::tools {

struct ChatTemplateSummary {
  bool present = false;            // tokenizer.chat_template in the file
  size_t bytes = 0;                // its size
  std::vector<std::string> named;  // tokenizer.chat_template.NAME
  bool usable = false;             // ChatTemplate::Create("auto") succeeded
  std::string used;                // its description, or the error
  bool jinja = false;              // rendered by the Jinja engine
  chat::ChatTemplate::Capabilities capabilities;
};

// What `--chat-template auto` picks for this file.
ChatTemplateSummary SummarizeChatTemplate(const engine::GgufFile& file,
                                          const engine::Vocab& vocab);

// One line: "tokenizer.chat_template (Jinja, 4,116 bytes; tools, ...)".
std::string ChatTemplateLine(const ChatTemplateSummary& s);

}  // namespace lumen::tools
