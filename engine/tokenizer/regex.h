#pragma once
// A small backtracking regular-expression matcher over code points, enough
// for the pre-tokenizer patterns of byte-level BPE vocabularies: literals,
// classes with ranges, \s \S \d \p{L} \p{N} \p{P} (and negations inside
// classes), groups (?:...), alternation, ? * + {m,n} (greedy), negative
// lookahead (?!...) and $. Semantics are ECMAScript's leftmost-first.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumen::engine {

class Regex {
 public:
  // InvalidArgument names the unsupported construct and its position.
  static absl::StatusOr<Regex> Compile(absl::string_view pattern);

  // Length of the match starting exactly at text[pos], or -1 when none.
  // `end` bounds the text (for $ and lookahead).
  int MatchAt(const uint32_t* text, int pos, int end) const;

  // Splits [begin, end) of `text` into pieces: every match and every run of
  // unmatched code points between matches (llama.cpp's regex split).
  // Appends piece end offsets to `piece_ends`.
  void Split(const uint32_t* text, int begin, int end,
             std::vector<int>* piece_ends) const;

  struct Class;
  struct Inst;

 private:
  bool Run(int pc, const uint32_t* text, int sp, int end, int* match_end) const;

  std::vector<Class> classes_;
  std::vector<Inst> program_;
};

struct Regex::Class {
  bool negated = false;
  uint8_t category_mask = 0;    // any of these CodepointFlags matches
  bool whitespace = false;      // \s
  bool not_whitespace = false;  // \S
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive
  bool Matches(uint32_t cp) const;
};

struct Regex::Inst {
  enum Op : uint8_t { kClass, kSplit, kJump, kMatch, kEnd, kNegLook };
  Op op;
  int x = 0;  // class index, jump target, preferred branch, lookahead body
  int y = 0;  // alternative branch; for kNegLook, where to continue
};

}  // namespace lumen::engine
