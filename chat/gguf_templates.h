#pragma once
// The chat-template data of a GGUF model file for ChatTemplate::Create:
// tokenizer.chat_template, every tokenizer.chat_template.NAME, the BOS/EOS
// texts and the control-token texts. The one file of the chat layer that
// knows GGUF (library lumen_chat_gguf); the rest takes plain strings.

#include "chat/chat_template.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/vocab.h"

namespace lumen::chat {

// Absent keys leave their fields empty; nothing here fails.
ModelTemplates ReadModelTemplates(const engine::GgufFile& file,
                                  const engine::Vocab& vocab);

}  // namespace lumen::chat
