#pragma once
// Code point mappings only the tokenizers use: the single-code-point
// decomposition and lowercase mappings of llama.cpp's WordPiece normalizer and
// GPT-2's byte <-> printable code point table. UTF-8 coding and categories
// live in base/unicode.h. Pure functions: any thread may call them.

#include <cstdint>

namespace lumen::engine {

// The first code point of cp's canonical decomposition, or cp itself.
uint32_t NfdFirst(uint32_t cp);
uint32_t ToLower(uint32_t cp);  // simple one-to-one lowercase mapping

// GPT-2 byte-level BPE maps every byte to a printable code point.
uint32_t ByteToUnicode(uint8_t byte);
// Inverse; returns -1 for code points that are not in the table.
int UnicodeToByte(uint32_t cp);

}  // namespace lumen::engine
