#include <string>

#include "base/unicode.h"
#include "engine/tokenizer/subword_models.h"
#include "engine/tokenizer/unicode_maps.h"

namespace lumen::engine {

namespace {

bool IsChineseChar(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// llama.cpp's WordPiece pre-tokenizer: with strip_accents, each code point
// becomes the first of its canonical decomposition and every combining mark
// (M*, spacing marks such as Devanagari vowel signs included) is dropped; a
// mark never splits a word. Whitespace splits words; punctuation, ASCII
// symbols and CJK ideographs are words of their own; NUL, U+FFFD and control
// characters vanish.
std::vector<std::string> SplitWords(const Vocab& vocab,
                                    absl::string_view text) {
  std::vector<std::string> words(1);
  for (uint32_t cp : DecodeUtf8(text)) {
    if (vocab.strip_accents) cp = NfdFirst(cp);
    if (IsWhitespace(cp)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    const uint8_t cat = CodepointCategory(cp);
    if (cp == 0 || cp == 0xFFFD || (cat & kCpControl)) continue;
    if (vocab.strip_accents && (cat & kCpMark)) continue;
    std::string s;
    AppendUtf8(vocab.lowercase ? ToLower(cp) : cp, &s);
    if ((cat & kCpPunctuation) || (cp < 0x7F && (cat & kCpSymbol)) ||
        IsChineseChar(cp)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = std::move(s);
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void WpmEncode(const Vocab& vocab, absl::string_view text,
               std::vector<int32_t>* out) {
  for (const std::string& w : SplitWords(vocab, text)) {
    // Word-initial pieces carry a phantom space (U+2581) in GGUF vocabularies;
    // continuation pieces ("##x" in BERT) carry nothing.
    const std::string word = "\xe2\x96\x81" + w;
    const size_t n = word.size();
    const size_t first = out->size();
    for (size_t i = 0; i < n;) {
      bool matched = false;
      for (size_t j = std::min(n, i + vocab.max_token_bytes + 1); j > i; --j) {
        const int32_t id = vocab.Find(absl::string_view(word).substr(i, j - i));
        if (id >= 0) {
          out->push_back(id);
          i = j;
          matched = true;
          break;
        }
      }
      if (!matched) {
        out->resize(first);
        break;
      }
    }
    if (out->size() == first) out->push_back(vocab.unk);
  }
}

}  // namespace lumen::engine
