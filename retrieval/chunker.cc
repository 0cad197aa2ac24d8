#include "retrieval/chunker.h"

#include <algorithm>

#include "base/unicode.h"

namespace lumen::retrieval {

namespace {

// Decodes the code point at s[i]; *len gets its byte length.
uint32_t CodepointAt(absl::string_view s, size_t i, int* len) {
  *len = std::min<int>(Utf8SequenceLength(static_cast<uint8_t>(s[i])),
                       s.size() - i);
  auto cps = DecodeUtf8(s.substr(i, *len));
  return cps.empty() ? 0xFFFD : cps[0];
}

}  // namespace

int EstimateTokens(absl::string_view text) {
  int tokens = 0;
  bool in_word = false;
  for (size_t i = 0; i < text.size();) {
    int len;
    const uint32_t cp = CodepointAt(text, i, &len);
    if (IsCjk(cp)) {
      ++tokens;
      in_word = false;
    } else if (IsWhitespace(cp) || (CodepointCategory(cp) & kCpPunctuation)) {
      if (!IsWhitespace(cp)) ++tokens;
      in_word = false;
    } else if (!in_word) {
      ++tokens;
      in_word = true;
    }
    i += len;
  }
  return tokens;
}

std::vector<absl::string_view> SplitSentences(absl::string_view text) {
  std::vector<absl::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    int len;
    const uint32_t cp = CodepointAt(text, i, &len);
    size_t end = i + len;
    bool boundary = false;
    if (cp == '.' || cp == '!' || cp == '?') {
      // English: the terminator must be followed by whitespace or the end.
      boundary = end >= text.size() || text[end] == ' ' || text[end] == '\n' ||
                 text[end] == '\t';
    } else if (cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == 0xFF1B ||
               cp == '\n') {
      boundary = true;  // 。！？； and line breaks
    }
    if (boundary) {
      // Keep closing quotes and the following spaces with the sentence.
      while (end < text.size() &&
             (text[end] == ' ' || text[end] == '"' || text[end] == '\''))
        ++end;
      out.push_back(text.substr(start, end - start));
      start = end;
      i = end;
      continue;
    }
    i = end;
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

std::vector<Chunk> ChunkText(absl::string_view text,
                             const ChunkerOptions& options,
                             const TokenCounter& count) {
  // Pieces: sentences, with over-long sentences cut at character boundaries.
  struct Piece {
    size_t start, end;
    int tokens;
  };
  std::vector<Piece> pieces;
  for (absl::string_view s : SplitSentences(text)) {
    const size_t base = s.data() - text.data();
    int tokens = count(s);
    if (tokens <= options.max_tokens) {
      pieces.push_back({base, base + s.size(), tokens});
      continue;
    }
    size_t from = 0;
    while (from < s.size()) {
      // Grow a slice character by character (coarsely: in steps of ~1/4 of
      // the budget's bytes) while it fits.
      size_t to = from;
      size_t best = from;
      while (to < s.size()) {
        int len;
        CodepointAt(s, to, &len);
        to += len;
        if (count(s.substr(from, to - from)) > options.max_tokens) break;
        best = to;
      }
      if (best == from) {  // a single character over budget: take it anyway
        int len;
        CodepointAt(s, from, &len);
        best = from + len;
      }
      pieces.push_back(
          {base + from, base + best, count(s.substr(from, best - from))});
      from = best;
    }
  }
  std::vector<Chunk> chunks;
  size_t i = 0;
  while (i < pieces.size()) {
    size_t j = i;
    int tokens = 0;
    while (j < pieces.size() &&
           (j == i || tokens + pieces[j].tokens <= options.max_tokens)) {
      tokens += pieces[j].tokens;
      ++j;
    }
    Chunk c;
    c.start = pieces[i].start;
    c.end = pieces[j - 1].end;
    c.text = std::string(text.substr(c.start, c.end - c.start));
    chunks.push_back(std::move(c));
    if (j >= pieces.size()) break;
    // Overlap: restart at the last pieces of this chunk that fit the overlap.
    size_t next = j;
    int overlap = 0;
    while (next > i + 1 &&
           overlap + pieces[next - 1].tokens <= options.overlap_tokens) {
      overlap += pieces[next - 1].tokens;
      --next;
    }
    i = next;
  }
  return chunks;
}

}  // namespace lumen::retrieval
