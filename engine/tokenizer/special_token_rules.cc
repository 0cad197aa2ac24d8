#include "engine/tokenizer/special_token_rules.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace lumen::engine {

namespace {

// The spellings llama.cpp (b10573, llama-vocab.cpp) recognizes as end of
// generation, end of turn or message, and fill-in-the-middle markers.
constexpr absl::string_view kControlLookingTexts[] = {
    // End of generation / turn / message.
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
    "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
    // Fill in the middle: prefix, suffix, middle, pad, repository, file.
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>",
    "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>", "<|fim_suffix|>",
    "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
    "<|code_suffix|>", "<|suffix|>", "<|fim_middle|>", "<fim-middle>",
    "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>",
    "<|middle|>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
    "<|file_sep|>"};

// Keys naming tokens that steer the model; a user-defined token named by one
// of them is a control token in disguise.
constexpr absl::string_view kDesignatingKeys[] = {
    "tokenizer.ggml.bos_token_id",       "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.eot_token_id",       "tokenizer.ggml.eom_token_id",
    "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.cls_token_id",
    "tokenizer.ggml.mask_token_id",      "tokenizer.ggml.fim_pre_token_id",
    "tokenizer.ggml.fim_suf_token_id",   "tokenizer.ggml.fim_mid_token_id",
    "tokenizer.ggml.fim_pad_token_id",   "tokenizer.ggml.fim_rep_token_id",
    "tokenizer.ggml.fim_sep_token_id",   "tokenizer.ggml.prefix_token_id",
    "tokenizer.ggml.suffix_token_id",    "tokenizer.ggml.middle_token_id"};

// The string value of `key`, or "" when absent or not a string.
absl::string_view StringOr(const GgufFile& file, absl::string_view key) {
  const GgufValue* v = file.Find(key);
  return (v != nullptr && v->type == GgufValueType::kString) ? v->str : "";
}

}  // namespace

void ApplyControlTokenRules(const GgufFile& file, Vocab* vocab) {
  for (absl::string_view text : kControlLookingTexts) {
    const int32_t id = vocab->Find(text);
    if (id >= 0) vocab->types[id] = TokenType::kControl;
  }
  for (absl::string_view key : kDesignatingKeys) {
    const GgufValue* v = file.Find(key);
    if (v == nullptr || !v->is_integer()) continue;
    // Signed and unsigned keys both hold small ids here; anything else is not
    // a token of this vocabulary.
    const int64_t id = v->i64;
    if (id < 0 || id >= vocab->size()) continue;
    if (vocab->types[id] == TokenType::kUserDefined) {
      vocab->types[id] = TokenType::kControl;
    }
  }
}

void ApplyWhitespaceStripRules(const GgufFile& file, Vocab* vocab) {
  const std::string name =
      absl::AsciiStrToLower(StringOr(file, "general.name"));
  const absl::string_view pre = StringOr(file, "tokenizer.ggml.pre");
  const absl::string_view arch = StringOr(file, "general.architecture");
  auto set = [&](absl::string_view text, bool Vocab::SpecialToken::*flag,
                 bool value) {
    const int32_t id = vocab->Find(text);
    for (Vocab::SpecialToken& t : vocab->special_tokens) {
      if (t.id == id) t.*flag = value;
    }
  };
  if (absl::StrContains(pre, "jina-v2-de") ||
      absl::StrContains(pre, "jina-v2-es") ||
      absl::StrContains(pre, "jina-v2-code") ||
      absl::StrContains(arch, "nomic-bert-moe") ||
      absl::StrContains(arch, "jina-bert-v3")) {
    set("<mask>", &Vocab::SpecialToken::lstrip, true);
  } else if (absl::StrContains(name, "phi-3") ||
             absl::StrContains(name, "phi3")) {
    for (Vocab::SpecialToken& t : vocab->special_tokens) t.rstrip = true;
    for (absl::string_view text : {"<unk>", "<s>", "<|endoftext|>"}) {
      set(text, &Vocab::SpecialToken::rstrip, false);
    }
  } else if (absl::StrContains(name, "modern-bert")) {
    set("[MASK]", &Vocab::SpecialToken::lstrip, true);
  }
}

}  // namespace lumen::engine
