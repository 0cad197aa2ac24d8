#pragma once
// Code point sets and their UTF-8 byte-range sequences: how a character class
// ([a-z], [^"], .) becomes a byte-level automaton that only ever produces
// whole, valid UTF-8 characters. Pure functions; any thread.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumen::engine::constrained {

inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

// Inclusive code point ranges, kept sorted and disjoint by Normalize().
using CodepointRanges = std::vector<std::pair<uint32_t, uint32_t>>;

// Sorts and merges overlapping or adjacent ranges.
void Normalize(CodepointRanges* ranges);
// Every code point (U+0000..U+10FFFF, surrogates excluded) not in `ranges`
// (which must be normalized).
CodepointRanges Complement(const CodepointRanges& ranges);
// Removes the surrogates U+D800..U+DFFF, which UTF-8 cannot encode.
void RemoveSurrogates(CodepointRanges* ranges);

// One UTF-8 encoding shape: byte i of a character lies in ranges[i].
struct Utf8Sequence {
  int length = 0;
  uint8_t lo[4] = {0, 0, 0, 0};
  uint8_t hi[4] = {0, 0, 0, 0};
};

// The byte sequences whose union is exactly the UTF-8 encodings of the code
// points in `ranges` (normalized, no surrogates). Single-byte (ASCII)
// sequences come first.
std::vector<Utf8Sequence> ToUtf8Sequences(const CodepointRanges& ranges);

// Appends the UTF-8 encoding of `cp` (which must be a valid scalar value).
void AppendUtf8Codepoint(uint32_t cp, std::string* out);

// Decodes one UTF-8 character at text[*pos] and advances *pos. Returns false
// (leaving *pos) on a malformed, overlong or surrogate sequence.
bool DecodeUtf8Codepoint(absl::string_view text, size_t* pos, uint32_t* cp);

}  // namespace lumen::engine::constrained
