#include "retrieval/postgres/pg_keywords.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "retrieval/keyword_terms.h"

namespace lumen::retrieval::postgres {

namespace {

// tsvector limits: lexemes shorter than 2 KiB, at most 256 positions each
// (PostgreSQL's MAXNUMPOS), positions below 16384.
constexpr size_t kMaxTermBytes = 255;
constexpr size_t kMaxPositions = 256;
constexpr size_t kMaxPosition = 16383;

// Quoted for tsvector/tsquery input: the lexeme is taken as is, no text
// search parser (and so no locale) is involved.
std::string QuoteLexeme(absl::string_view term) {
  std::string out = "'";
  for (char c : term) {
    // Quotes and backslashes are doubled inside a quoted lexeme.
    if (c == '\'' || c == '\\') out += c;
    out += c;
  }
  return out + "'";
}

}  // namespace

std::string TsVector(absl::string_view passage) {
  std::map<std::string, std::vector<size_t>> positions;
  const std::vector<std::string> terms = KeywordTerms(passage);
  for (size_t i = 0; i < terms.size(); ++i) {
    if (terms[i].size() > kMaxTermBytes) continue;
    std::vector<size_t>& p = positions[terms[i]];
    if (p.size() < kMaxPositions) p.push_back(std::min(i + 1, kMaxPosition));
  }
  std::vector<std::string> parts;
  for (const auto& [term, pos] : positions) {
    parts.push_back(
        absl::StrCat(QuoteLexeme(term), ":", absl::StrJoin(pos, ",")));
  }
  return absl::StrJoin(parts, " ");
}

std::string TsQuery(absl::string_view query) {
  std::set<std::string> unique;
  for (std::string& t : KeywordTerms(query, KeywordUse::kQuery)) {
    if (t.size() <= kMaxTermBytes) unique.insert(std::move(t));
  }
  std::vector<std::string> quoted;
  for (const std::string& t : unique) quoted.push_back(QuoteLexeme(t));
  return absl::StrJoin(quoted, " | ");
}

}  // namespace lumen::retrieval::postgres
