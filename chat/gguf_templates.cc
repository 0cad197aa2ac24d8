#include "chat/gguf_templates.h"

#include "absl/strings/match.h"

namespace lumen::chat {

ModelTemplates ReadModelTemplates(const engine::GgufFile& file,
                                  const engine::Vocab& vocab) {
  ModelTemplates t;
  t.chat_template = vocab.chat_template;
  constexpr absl::string_view kPrefix = "tokenizer.chat_template.";
  for (const engine::GgufKeyValue& kv : file.metadata()) {
    if (absl::StartsWith(kv.key, kPrefix) &&
        kv.value.type == engine::GgufValueType::kString) {
      t.named_templates.emplace_back(std::string(kv.key.substr(kPrefix.size())),
                                     std::string(kv.value.str));
    }
  }
  auto text = [&](int32_t id) {
    return id >= 0 && id < vocab.size() ? vocab.tokens[id] : std::string();
  };
  t.bos_token = text(vocab.bos);
  t.eos_token = text(vocab.eos);
  for (const engine::Vocab::SpecialToken& s : vocab.special_tokens) {
    t.special_tokens.push_back(text(s.id));
  }
  return t;
}

}  // namespace lumen::chat
