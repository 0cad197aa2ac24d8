#pragma once
// The FTS5 query for a user's search text, for SQLite's trigram tokenizer
// (which matches substrings of 3+ characters, so Chinese needs no word
// segmentation): Latin words of 3+ characters as quoted strings, runs of CJK
// characters as their overlapping trigrams, joined with OR. Pure function.

#include <string>

#include "absl/strings/string_view.h"

namespace lumen::retrieval::sqlite {

// Empty when the text has no usable term.
std::string FtsQuery(absl::string_view text);

}  // namespace lumen::retrieval::sqlite
