#pragma once
// KeywordTerms: the words a keyword index stores for a text and looks up for
// a query, without a dictionary and independent of any database locale:
// Latin (and other space-separated) words lowercased, and runs of CJK
// characters as overlapping character bigrams, the usual dictionary-free
// indexing of Chinese, Japanese and Korean (as in Lucene's CJK analyzer). A
// query and a passage that share a two-character Chinese word share its
// bigram. Passages also index each CJK character alone, so that a
// one-character query (茶) finds them; a query uses bigrams where it has
// them (precise) and single characters only for a lone one. Pure functions.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumen::retrieval {

enum class KeywordUse { kPassage, kQuery };

// The terms of `text` in order (repeats kept: position i + 1 is term i).
std::vector<std::string> KeywordTerms(absl::string_view text,
                                      KeywordUse use = KeywordUse::kPassage);

}  // namespace lumen::retrieval
