#pragma once
// Chunker: splits a document into passages of at most `max_tokens` tokens
// that overlap by up to `overlap_tokens`, breaking at sentence ends (English
// . ! ? and Chinese 。！？；, and line breaks) where possible and never
// inside a UTF-8 character.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumen::retrieval {

struct Chunk {
  std::string text;
  int64_t start = 0;  // byte offsets in the document
  int64_t end = 0;
};

struct ChunkerOptions {
  int max_tokens = 256;
  int overlap_tokens = 32;
};

// Counts the tokens of a piece of text (a tokenizer, or an estimate).
using TokenCounter = std::function<int(absl::string_view)>;

// Splits into sentences (terminator kept with its sentence).
std::vector<absl::string_view> SplitSentences(absl::string_view text);

std::vector<Chunk> ChunkText(absl::string_view text,
                             const ChunkerOptions& options,
                             const TokenCounter& count_tokens);

// A tokenizer-free estimate: one token per word of Latin text and one per
// CJK character (used when no tokenizer is at hand).
int EstimateTokens(absl::string_view text);

}  // namespace lumen::retrieval
