#include <queue>
#include <string>

#include "base/unicode.h"
#include "engine/tokenizer/subword_models.h"
#include "engine/tokenizer/unicode_maps.h"

namespace lumen::engine {

namespace {

struct BpeSymbol {
  int prev;
  int next;
  int32_t id;    // token id of the symbol's text, -1 if not a token
  size_t start;  // byte offset in the byte-encoded word
  size_t len;    // 0 once merged
};

struct BpeBigram {
  int left;
  int right;
  int32_t rank;
  int32_t merged_id;
  // Lowest rank first; on ties the leftmost pair.
  bool operator<(const BpeBigram& o) const {
    return rank > o.rank || (rank == o.rank && left > o.left);
  }
};

}  // namespace

void BpeEncode(const Vocab& vocab, const PreTokenizer& pre,
               absl::string_view text, std::vector<int32_t>* out) {
  std::vector<std::string> words;
  pre.Split(text, &words);
  std::vector<BpeSymbol> symbols;
  std::string encoded;
  for (const std::string& word : words) {
    encoded.clear();
    for (unsigned char byte : word) AppendUtf8(ByteToUnicode(byte), &encoded);
    if (vocab.ignore_merges) {
      if (const int32_t id = vocab.Find(encoded); id >= 0) {
        out->push_back(id);
        continue;
      }
    }
    symbols.clear();
    for (size_t i = 0; i < encoded.size();) {
      const size_t len = Utf8SequenceLength(static_cast<uint8_t>(encoded[i]));
      const int idx = static_cast<int>(symbols.size());
      symbols.push_back({idx - 1, idx + 1,
                         vocab.Find(absl::string_view(encoded).substr(i, len)),
                         i, len});
      i += len;
    }
    if (symbols.empty()) continue;
    symbols.back().next = -1;

    std::priority_queue<BpeBigram> queue;
    auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const int32_t l = symbols[left].id, r = symbols[right].id;
      if (l < 0 || r < 0) return;
      auto it = vocab.merge_rank.find((static_cast<uint64_t>(l) << 32) |
                                      static_cast<uint32_t>(r));
      if (it == vocab.merge_rank.end()) return;
      const absl::string_view merged = absl::string_view(encoded).substr(
          symbols[left].start, symbols[left].len + symbols[right].len);
      queue.push({left, right, it->second, vocab.Find(merged)});
    };
    for (size_t i = 1; i < symbols.size(); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const BpeBigram b = queue.top();
      queue.pop();
      BpeSymbol& left = symbols[b.left];
      BpeSymbol& right = symbols[b.right];
      // Stale if either side changed since the pair was queued.
      if (left.len == 0 || right.len == 0 || left.next != b.right) continue;
      auto it = vocab.merge_rank.find((static_cast<uint64_t>(left.id) << 32) |
                                      static_cast<uint32_t>(right.id));
      if (it == vocab.merge_rank.end() || it->second != b.rank) continue;
      left.len += right.len;
      left.id = b.merged_id;
      right.len = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = b.left;
      try_add(left.prev, b.left);
      try_add(b.left, left.next);
    }

    for (int i = 0; i >= 0; i = symbols[i].next) {
      if (symbols[i].id >= 0) {
        out->push_back(symbols[i].id);
        continue;
      }
      // As llama.cpp: fall back to single-byte tokens of the encoded text.
      const absl::string_view piece =
          absl::string_view(encoded).substr(symbols[i].start, symbols[i].len);
      for (char c : piece) {
        if (const int32_t id = vocab.Find(absl::string_view(&c, 1)); id >= 0) {
          out->push_back(id);
        }
      }
    }
  }
}

}  // namespace lumen::engine
