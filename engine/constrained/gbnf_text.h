#pragma once
// Writing GBNF text: quoting literals and character classes so that the
// regex and JSON Schema translators emit grammars ParseGbnf reads back
// exactly. Pure functions; any thread.

#include <string>

#include "absl/strings/string_view.h"
#include "engine/constrained/utf8_ranges.h"

namespace lumen::engine::constrained {

// A GBNF string literal matching exactly `text` (valid UTF-8).
std::string GbnfLiteral(absl::string_view text);
// A GBNF literal for one code point.
std::string GbnfLiteral(uint32_t cp);
// A GBNF character class "[...]" matching one code point of `ranges`
// (normalized, non-empty), or `negated` its complement.
std::string GbnfClass(const CodepointRanges& ranges, bool negated = false);

}  // namespace lumen::engine::constrained
