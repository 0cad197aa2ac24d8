#include <queue>

#include "base/unicode.h"
#include "engine/tokenizer/subword_models.h"

namespace lumen::engine {

namespace {

struct SpmSymbol {
  int prev;
  int next;
  size_t start;  // byte offset in the text
  size_t len;    // 0 once merged into its left neighbour
};

struct SpmBigram {
  int left;
  int right;
  float score;
  size_t len;
  // Highest score first; on ties the leftmost pair.
  bool operator<(const SpmBigram& o) const {
    return score < o.score || (score == o.score && left > o.left);
  }
};

}  // namespace

void SpmEncode(const Vocab& vocab, absl::string_view text,
               std::vector<int32_t>* out) {
  std::vector<SpmSymbol> symbols;
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min<size_t>(
        Utf8SequenceLength(static_cast<uint8_t>(text[i])), text.size() - i);
    const int idx = static_cast<int>(symbols.size());
    symbols.push_back({idx - 1, idx + 1, i, len});
    i += len;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::priority_queue<SpmBigram> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const absl::string_view piece = text.substr(
        symbols[left].start, symbols[left].len + symbols[right].len);
    const int32_t id = vocab.Find(piece);
    if (id < 0) return;
    queue.push({left, right, vocab.scores[id], piece.size()});
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const SpmBigram b = queue.top();
    queue.pop();
    SpmSymbol& left = symbols[b.left];
    SpmSymbol& right = symbols[b.right];
    if (left.len == 0 || right.len == 0 || left.len + right.len != b.len) {
      continue;  // stale: one side was merged elsewhere meanwhile
    }
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int i = 0; i >= 0; i = symbols[i].next) {
    const absl::string_view piece =
        text.substr(symbols[i].start, symbols[i].len);
    const int32_t id = vocab.Find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    for (unsigned char byte : piece) out->push_back(vocab.byte_tokens[byte]);
  }
}

}  // namespace lumen::engine
