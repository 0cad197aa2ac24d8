#pragma once
// Keyword search terms as PostgreSQL text-search values. The terms come
// from KeywordTerms (lowercased words; CJK characters and bigrams), computed
// by lumend, and are written in tsvector/tsquery input syntax with every
// lexeme quoted, so no text-search parser, configuration or database locale
// is involved (see pg_schema.cc for why). Pure functions.

#include <string>

#include "absl/strings/string_view.h"

namespace lumen::retrieval::postgres {

// A tsvector literal of the passage's terms with their positions
// ("'term':1,5 'other':2").
std::string TsVector(absl::string_view passage);

// A tsquery matching any term of the query ("'a' | 'b'"); empty when the
// query has no term.
std::string TsQuery(absl::string_view query);

}  // namespace lumen::retrieval::postgres
