#include "retrieval/sqlite/fts_query.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/unicode.h"

namespace lumen::retrieval::sqlite {

std::string FtsQuery(absl::string_view text) {
  std::vector<std::string> terms;
  std::vector<uint32_t> word;
  auto flush = [&] {
    if (word.empty()) return;
    const bool cjk = IsCjk(word[0]);
    if (cjk && word.size() > 3) {
      for (size_t i = 0; i + 3 <= word.size(); ++i) {
        terms.push_back(EncodeUtf8({word[i], word[i + 1], word[i + 2]}));
      }
    } else if (word.size() >= 3) {
      terms.push_back(EncodeUtf8(word));
    }
    word.clear();
  };
  for (uint32_t cp : DecodeUtf8(text)) {
    const bool separator = IsWhitespace(cp) ||
                           (CodepointCategory(cp) & kCpPunctuation) ||
                           cp == '"';
    if (separator) {
      flush();
      continue;
    }
    if (!word.empty() && IsCjk(word.back()) != IsCjk(cp)) flush();
    word.push_back(cp);
  }
  flush();
  std::vector<std::string> quoted;
  for (const std::string& t : terms) {
    quoted.push_back(absl::StrCat("\"", t, "\""));
  }
  return absl::StrJoin(quoted, " OR ");
}

}  // namespace lumen::retrieval::sqlite
