#pragma once
// Code point level Unicode helpers: UTF-8 decoding, encoding and validation,
// general category groups and the White_Space property. Pure functions of
// their arguments (the tables are constant): any thread may call them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumen {

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

// The CodepointFlags bit of cp's category; 0 for unassigned code points.
uint8_t CodepointCategory(uint32_t cp);
// The Unicode White_Space property.
bool IsWhitespace(uint32_t cp);
// Kana, CJK ideographs (with extension A and the supplementary planes'
// extensions) and Hangul syllables: scripts written without spaces, which
// the chunker and the keyword search split into character runs.
bool IsCjk(uint32_t cp);

// ---- Decoding and encoding ----

// Length of the UTF-8 sequence that starts with `lead` (1 for invalid leads).
int Utf8SequenceLength(uint8_t lead);
// Decodes UTF-8 leniently, as llama.cpp's tokenizers do: a byte that does not
// start a sequence of the expected length becomes U+FFFD and decoding goes on
// with the next byte. Overlong forms and surrogates are decoded, not rejected.
std::vector<uint32_t> DecodeUtf8(absl::string_view text);
// Appends the UTF-8 encoding of `cp` (which the caller keeps below 0x110000).
void AppendUtf8(uint32_t cp, std::string* out);
std::string EncodeUtf8(const std::vector<uint32_t>& cps);

// ---- Validation (strict: Unicode's well-formed UTF-8, as protobuf checks)
// ----

// True when `bytes` is well-formed UTF-8: no stray continuation bytes, no
// truncated sequence, no overlong form, no surrogate, nothing past U+10FFFF.
bool IsValidUtf8(absl::string_view bytes);
// Length (1-4) of the well-formed character at the start of `bytes`; 0 when
// `bytes` is empty or starts with an ill-formed or truncated sequence.
size_t Utf8CharLength(absl::string_view bytes);
// `bytes` with every ill-formed part replaced by U+FFFD, one per maximal
// ill-formed subpart (Unicode's recommended practice), so the result is always
// valid UTF-8. Valid input is returned unchanged.
std::string ToValidUtf8(absl::string_view bytes);
// Number of bytes at the end of `s` that begin a well-formed character the
// following bytes could still complete; 0 when `s` ends on a character
// boundary or with bytes no continuation could make valid.
size_t IncompleteUtf8Suffix(absl::string_view s);

}  // namespace lumen
