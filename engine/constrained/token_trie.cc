#include "engine/constrained/token_trie.h"

#include <algorithm>

namespace lumen::engine::constrained {

bool TokenTrie::IsEndOfGeneration(int32_t token) const {
  return std::find(end_of_generation_.begin(), end_of_generation_.end(),
                   token) != end_of_generation_.end();
}

std::shared_ptr<const TokenTrie> TokenTrie::Build(const Tokenizer& tokenizer) {
  const Vocab& v = tokenizer.vocab();
  std::shared_ptr<TokenTrie> t(new TokenTrie());
  t->vocab_size_ = v.size();
  for (int32_t id : {v.eos, v.eot}) {
    if (id >= 0 && id < v.size() && !t->IsEndOfGeneration(id)) {
      t->end_of_generation_.push_back(id);
    }
  }
  t->byte_offsets_.reserve(v.size() + 1);
  for (int32_t id = 0; id < v.size(); ++id) {
    t->byte_offsets_.push_back(static_cast<int64_t>(t->bytes_.size()));
    const TokenType type = v.types[id];
    if (type == TokenType::kControl || type == TokenType::kUnknown ||
        type == TokenType::kUnused || t->IsEndOfGeneration(id)) {
      continue;
    }
    t->bytes_ += tokenizer.TokenToPiece(id);
  }
  t->byte_offsets_.push_back(static_cast<int64_t>(t->bytes_.size()));

  // Tokens sorted by bytes (unsigned order) are the trie's preorder.
  std::vector<int32_t> order;
  for (int32_t id = 0; id < v.size(); ++id) {
    if (!t->TokenBytes(id).empty()) order.push_back(id);
  }
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return t->TokenBytes(a) < t->TokenBytes(b);
  });

  // Longer byte strings cannot be walked with 16-bit depths; no real
  // vocabulary comes near.
  constexpr size_t kMaxTokenBytes = 0xFFFF;
  order.erase(std::remove_if(order.begin(), order.end(),
                             [&](int32_t id) {
                               return t->TokenBytes(id).size() > kMaxTokenBytes;
                             }),
              order.end());
  t->nodes_.push_back({0, 0, 0, 0});
  std::vector<int32_t> path = {0};  // node at each depth of the current path
  absl::string_view previous;
  for (int32_t id : order) {
    const absl::string_view bytes = t->TokenBytes(id);
    size_t common = 0;
    while (common < bytes.size() && common < previous.size() &&
           bytes[common] == previous[common]) {
      ++common;
    }
    // Close the nodes below the common prefix.
    while (path.size() > common + 1) {
      t->nodes_[path.back()].subtree_end =
          static_cast<int32_t>(t->nodes_.size());
      path.pop_back();
    }
    for (size_t d = common; d < bytes.size(); ++d) {
      path.push_back(static_cast<int32_t>(t->nodes_.size()));
      t->nodes_.push_back({0, static_cast<int32_t>(t->tokens_.size()),
                           static_cast<uint16_t>(d + 1),
                           static_cast<uint8_t>(bytes[d])});
    }
    // Tokens come right after their node is created (shorter strings sort
    // first), so the node's token range is contiguous.
    t->tokens_.push_back(id);
    t->max_depth_ = std::max(t->max_depth_, static_cast<int32_t>(bytes.size()));
    previous = bytes;
  }
  while (!path.empty()) {
    t->nodes_[path.back()].subtree_end = static_cast<int32_t>(t->nodes_.size());
    path.pop_back();
  }
  // Sentinel: closes the last node's token range.
  t->nodes_.push_back({0, static_cast<int32_t>(t->tokens_.size()), 0, 0});
  return t;
}

}  // namespace lumen::engine::constrained
