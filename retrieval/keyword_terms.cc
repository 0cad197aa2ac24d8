#include "retrieval/keyword_terms.h"

#include "base/unicode.h"
#include "engine/tokenizer/unicode_maps.h"

namespace lumen::retrieval {

std::vector<std::string> KeywordTerms(absl::string_view text, KeywordUse use) {
  std::vector<std::string> terms;
  std::vector<uint32_t> run;  // the current word or CJK run
  bool run_is_cjk = false;
  auto flush = [&] {
    if (run.empty()) return;
    if (run_is_cjk && run.size() > 1) {
      for (size_t i = 0; i < run.size(); ++i) {
        if (use == KeywordUse::kPassage) {
          terms.push_back(EncodeUtf8({run[i]}));
        }
        if (i + 1 < run.size()) {
          terms.push_back(EncodeUtf8({run[i], run[i + 1]}));
        }
      }
    } else {
      terms.push_back(EncodeUtf8(run));
    }
    run.clear();
  };
  for (uint32_t cp : DecodeUtf8(text)) {
    const uint8_t category = CodepointCategory(cp);
    const bool word_char = (category & (kCpLetter | kCpNumber | kCpMark)) != 0;
    if (!word_char) {
      flush();
      continue;
    }
    const bool cjk = IsCjk(cp);
    if (!run.empty() && cjk != run_is_cjk) flush();
    run_is_cjk = cjk;
    run.push_back(engine::ToLower(cp));
  }
  flush();
  return terms;
}

}  // namespace lumen::retrieval
