#pragma once
// TokenTrie: the byte strings of a vocabulary's tokens in a trie laid out in
// preorder (children in byte order), so a mask computation visits nodes in
// array order and skips a refused subtree by jumping to its end. Token bytes
// are what the detokenizer emits (Tokenizer::TokenToPiece): an SPM "▁" is a
// space, a byte-fallback "<0xXX>" token is one byte, a byte-level BPE token
// maps back through GPT-2's byte table. Control, unknown and unused tokens
// and tokens without bytes are left out (a constraint never allows them);
// the end-of-generation tokens (EOS, EOT) are listed apart. Built once per
// vocabulary; immutable; any thread.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/tokenizer/tokenizer.h"

namespace lumen::engine::constrained {

class TokenTrie {
 public:
  static std::shared_ptr<const TokenTrie> Build(const Tokenizer& tokenizer);

  int32_t vocab_size() const { return vocab_size_; }
  // Words of a token mask: bit t of word t / 32 is token t.
  int32_t mask_words() const { return (vocab_size_ + 31) / 32; }
  // The bytes of `token`; empty when the token can never be allowed.
  absl::string_view TokenBytes(int32_t token) const {
    if (token < 0 || token >= vocab_size_) return {};
    return absl::string_view(bytes_).substr(
        byte_offsets_[token], byte_offsets_[token + 1] - byte_offsets_[token]);
  }
  const std::vector<int32_t>& end_of_generation() const {
    return end_of_generation_;
  }
  bool IsEndOfGeneration(int32_t token) const;

  // Preorder nodes; node 0 is the root (no byte). Packed in one array so
  // the mask walk reads one cache line per few nodes.
  struct Node {
    int32_t subtree_end;  // one past the last node of this node's subtree
    int32_t token_begin;  // tokens ending here: tokens()[token_begin ..
                          // nodes()[i + 1].token_begin)
    uint16_t depth;       // bytes from the root
    uint8_t byte;         // the byte leading into this node
  };
  int32_t num_nodes() const { return static_cast<int32_t>(nodes_.size()) - 1; }
  // [num_nodes + 1]; the last entry is a sentinel closing the token ranges.
  const Node* nodes() const { return nodes_.data(); }
  const int32_t* tokens() const { return tokens_.data(); }
  int32_t num_tokens() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t max_depth() const { return max_depth_; }

 private:
  TokenTrie() = default;

  int32_t vocab_size_ = 0;
  std::string bytes_;                  // all token bytes, concatenated
  std::vector<int64_t> byte_offsets_;  // [vocab_size + 1]
  std::vector<int32_t> end_of_generation_;

  std::vector<Node> nodes_;      // [num_nodes + 1]
  std::vector<int32_t> tokens_;  // [num_tokens] in trie order
  int32_t max_depth_ = 0;
};

}  // namespace lumen::engine::constrained
