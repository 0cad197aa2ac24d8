#pragma once
// Batch: the ragged input of one engine step. Tokens of many sequences are
// laid end to end; each sequence contributes a contiguous run of positions
// (a prompt chunk or one decode token) and the KV block table that covers
// them. Every linear layer runs once over all tokens of the batch.

#include <cstdint>
#include <span>

namespace lumen::engine {

class LoraAdapter;

struct BatchSequence {
  int32_t num_tokens = 0;  // tokens of this sequence in Batch::tokens
  int32_t start_position =
      0;  // position of its first token (tokens already cached)
  // KV block ids covering positions [0, start_position + num_tokens).
  std::span<const int32_t> block_table;
  bool want_logits = false;              // return logits for its last token
  const LoraAdapter* adapter = nullptr;  // LoRA delta for these rows, if any
};

struct Batch {
  std::span<const int32_t> tokens;  // [n_tokens], sequence after sequence
  std::span<const BatchSequence>
      sequences;  // sum of num_tokens == tokens.size()
};

}  // namespace lumen::engine
