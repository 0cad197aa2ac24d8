#pragma once
// The three subword algorithms, each applied to one run of raw text (special
// tokens already split off by Tokenizer). Appends token ids to `out`.

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/vocab.h"

namespace lumen::engine {

// SentencePiece-style: highest-scoring merges of adjacent pieces, then byte
// fallback (<0xXX>) for pieces outside the vocabulary. `text` is already
// whitespace-escaped (spaces as U+2581).
void SpmEncode(const Vocab& vocab, absl::string_view text,
               std::vector<int32_t>* out);

// Byte-level BPE over the words of `pre`: lowest-rank merges first.
void BpeEncode(const Vocab& vocab, const PreTokenizer& pre,
               absl::string_view text, std::vector<int32_t>* out);

// BERT WordPiece: as the vocabulary's normalizer says, NFD base characters
// without combining marks and lowercase; split on whitespace, punctuation and
// CJK; then greedy longest-match per word ([UNK] when a word has no cover).
void WpmEncode(const Vocab& vocab, absl::string_view text,
               std::vector<int32_t>* out);

}  // namespace lumen::engine
