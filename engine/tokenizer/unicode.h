#pragma once
// Code point level Unicode helpers shared by the tokenizers: UTF-8 coding,
// general category groups, White_Space, the single-code-point decomposition
// and lowercase mappings that llama.cpp's tokenizers use, and GPT-2's
// byte <-> printable code point table.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumen::engine {

// General category groups (the first letter of the Unicode category).
enum CodepointFlags : uint8_t {
  kCpNumber = 1,        // N*
  kCpLetter = 2,        // L*
  kCpSeparator = 4,     // Z*
  kCpMark = 8,          // M*
  kCpPunctuation = 16,  // P*
  kCpSymbol = 32,       // S*
  kCpControl = 64,      // Cc, Cf, Cs, Co (unassigned code points have no flag)
};

uint8_t CodepointCategory(uint32_t cp);
bool IsWhitespace(uint32_t cp);  // the Unicode White_Space property
// The first code point of cp's canonical decomposition, or cp itself.
uint32_t NfdFirst(uint32_t cp);
uint32_t ToLower(uint32_t cp);  // simple one-to-one lowercase mapping

// Decodes UTF-8; each invalid byte becomes U+FFFD and decoding goes on.
std::vector<uint32_t> DecodeUtf8(absl::string_view text);
void AppendUtf8(uint32_t cp, std::string* out);
std::string EncodeUtf8(const std::vector<uint32_t>& cps);
// Length of the UTF-8 sequence that starts with `lead` (1 for invalid leads).
int Utf8SequenceLength(uint8_t lead);
// Number of bytes at the end of `s` that form an incomplete (but so far valid)
// UTF-8 sequence; 0 when `s` ends on a character boundary.
size_t IncompleteUtf8Suffix(absl::string_view s);

// GPT-2 byte-level BPE maps every byte to a printable code point.
uint32_t ByteToUnicode(uint8_t byte);
// Inverse; returns -1 for code points that are not in the table.
int UnicodeToByte(uint32_t cp);

}  // namespace lumen::engine
