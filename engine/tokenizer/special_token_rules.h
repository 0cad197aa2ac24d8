#pragma once
// Corrections to the token types a GGUF file declares. Converters often mark
// end-of-turn, end-of-text and fill-in-the-middle markers as user-defined
// tokens (phi-3's "</s>", deepseek-coder's "<｜fim▁hole｜>"), and user-defined
// tokens are matched in any text. llama.cpp therefore turns tokens with these
// well-known spellings into control tokens when it loads a vocabulary, and so
// do we: a control token never comes out of user text unless parse_special.
// Both functions are called once by Vocab::FromGguf.

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/vocab.h"

namespace lumen::engine {

// Makes control tokens of:
// - every token whose text is one of llama.cpp's end-of-generation,
//   end-of-turn, end-of-message and fill-in-the-middle spellings (llama.cpp
//   promotes a FIM spelling only when the file names no FIM id, and only the
//   first it meets; we promote them all, which can only protect more);
// - user-defined tokens the file names as bos/eos/eot/eom/sep/cls/mask/FIM
//   tokens (beyond llama.cpp, which leaves those matchable in plain text).
// Runs before `vocab->special_tokens` is built. Keys of the wrong type count
// as absent; never fails.
void ApplyControlTokenRules(const GgufFile& file, Vocab* vocab);

// Sets the lstrip/rstrip flags of `vocab->special_tokens` that llama.cpp gives
// by model name: phi-3's special tokens (but <unk>, <s>, <|endoftext|>) eat the
// whitespace after them; the mask token of jina-v2, nomic-bert-moe,
// jina-bert-v3 and modern-bert eats the whitespace before it.
void ApplyWhitespaceStripRules(const GgufFile& file, Vocab* vocab);

}  // namespace lumen::engine
