#include "engine/constrained/regex_to_gbnf.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/constrained/gbnf_parser.h"
#include "engine/constrained/gbnf_text.h"
#include "engine/constrained/utf8_ranges.h"

namespace lumen::engine::constrained {

namespace {

constexpr int kMaxNesting = 200;

struct Node {
  enum Kind { kSet, kConcat, kAlt, kRepeat } kind = kConcat;
  CodepointRanges set;  // kSet, normalized
  std::vector<Node> children;
  int min = 0, max = -1;  // kRepeat; max -1 = unbounded
};

bool Nullable(const Node& n) {
  switch (n.kind) {
    case Node::kSet:
      return false;
    case Node::kRepeat:
      return n.min == 0 || Nullable(n.children[0]);
    case Node::kAlt:
      for (const Node& c : n.children) {
        if (Nullable(c)) return true;
      }
      return false;
    case Node::kConcat:
      for (const Node& c : n.children) {
        if (!Nullable(c)) return false;
      }
      return true;
  }
  return false;
}

Node SetNode(CodepointRanges ranges) {
  Node n;
  n.kind = Node::kSet;
  Normalize(&ranges);
  RemoveSurrogates(&ranges);
  n.set = std::move(ranges);
  return n;
}

CodepointRanges Digits() { return {{'0', '9'}}; }
CodepointRanges Word() {
  return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
}
CodepointRanges Space() { return {{'\t', '\r'}, {' ', ' '}}; }

CodepointRanges Negate(CodepointRanges r) {
  Normalize(&r);
  return Complement(r);
}

class RegexParser {
 public:
  RegexParser(absl::string_view regex) : source_(regex) {}

  absl::StatusOr<Node> Parse() {
    size_t pos = 0;
    while (pos < source_.size()) {
      uint32_t cp = 0;
      if (!DecodeUtf8Codepoint(source_, &pos, &cp)) {
        return absl::InvalidArgumentError(
            absl::StrCat("regex column ", cps_.size() + 1, ": invalid UTF-8"));
      }
      cps_.push_back(cp);
    }
    // Anchors at the ends are implied (the whole output must match).
    if (!cps_.empty() && cps_[0] == '^') begin_ = 1;
    end_ = cps_.size();
    if (end_ > begin_ && cps_[end_ - 1] == '$') {
      size_t backslashes = 0;
      while (end_ - 1 - backslashes > begin_ &&
             cps_[end_ - 2 - backslashes] == '\\') {
        ++backslashes;
      }
      if (backslashes % 2 == 0) --end_;
    }
    pos_ = begin_;
    auto node = ParseAlt(0);
    if (!node.ok()) return node.status();
    if (pos_ < end_) return Error(pos_, "unbalanced ')'");
    return node;
  }

 private:
  absl::Status Error(size_t at, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("regex column ", at + 1, ": ", what));
  }
  absl::Status Unsupported(size_t at, absl::string_view what) const {
    return Error(at, absl::StrCat(what, " is not supported"));
  }
  bool AtEnd() const { return pos_ >= end_; }
  uint32_t Peek(size_t ahead = 0) const {
    return pos_ + ahead < end_ ? cps_[pos_ + ahead] : 0;
  }

  absl::StatusOr<Node> ParseAlt(int depth) {
    if (depth > kMaxNesting) {
      return Error(pos_,
                   absl::StrCat("groups nested deeper than ", kMaxNesting));
    }
    Node alt;
    alt.kind = Node::kAlt;
    while (true) {
      auto concat = ParseConcat(depth);
      if (!concat.ok()) return concat.status();
      alt.children.push_back(std::move(*concat));
      if (AtEnd() || Peek() != '|') break;
      ++pos_;
    }
    if (alt.children.size() == 1) return std::move(alt.children[0]);
    return alt;
  }

  absl::StatusOr<Node> ParseConcat(int depth) {
    Node concat;
    concat.kind = Node::kConcat;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      auto atom = ParseAtom(depth);
      if (!atom.ok()) return atom.status();
      Node item = std::move(*atom);
      while (!AtEnd()) {
        int min = 0, max = -1;
        const size_t q = pos_;
        if (!ParseQuantifier(&min, &max)) break;
        if (!q_error_.ok()) return q_error_;
        if (!AtEnd() && Peek() == '?') {
          ++pos_;  // lazy: the same set of full matches
        } else if (!AtEnd() && Peek() == '+') {
          return Unsupported(pos_, "possessive quantifier");
        }
        if (max < 0 && Nullable(item)) {
          // The GBNF loop would be left-recursive.
          return Unsupported(q,
                             "unbounded repetition of something that can "
                             "match the empty string (like (a*)*)");
        }
        Node rep;
        rep.kind = Node::kRepeat;
        rep.min = min;
        rep.max = max;
        rep.children.push_back(std::move(item));
        item = std::move(rep);
      }
      concat.children.push_back(std::move(item));
    }
    return concat;
  }

  // Reads a quantifier at pos_; false (pos_ unchanged) when there is none.
  // A '{' that does not form {m}, {m,} or {m,n} is a literal, as in PCRE.
  bool ParseQuantifier(int* min, int* max) {
    q_error_ = absl::OkStatus();
    const uint32_t c = Peek();
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      *min = c == '+' ? 1 : 0;
      *max = c == '?' ? 1 : -1;
      return true;
    }
    if (c != '{') return false;
    size_t p = pos_ + 1;
    auto number = [&](int64_t* out) {
      const size_t start = p;
      *out = 0;
      while (p < end_ && cps_[p] >= '0' && cps_[p] <= '9') {
        *out = std::min<int64_t>(*out * 10 + (cps_[p] - '0'), 1 << 30);
        ++p;
      }
      return p > start;
    };
    int64_t lo = 0, hi = 0;
    if (!number(&lo)) return false;
    hi = lo;
    if (p < end_ && cps_[p] == ',') {
      ++p;
      if (!number(&hi)) hi = -1;
    }
    if (p >= end_ || cps_[p] != '}') return false;
    const size_t at = pos_;
    pos_ = p + 1;
    if (lo > kMaxRepetition || hi > kMaxRepetition) {
      q_error_ = Error(at, absl::StrCat("repetition count above the limit of ",
                                        kMaxRepetition));
    } else if (hi >= 0 && hi < lo) {
      q_error_ = Error(at, absl::StrCat("repetition {", lo, ",", hi,
                                        "} has its maximum below its minimum"));
    }
    *min = static_cast<int>(lo);
    *max = static_cast<int>(hi);
    return true;
  }

  absl::StatusOr<Node> ParseAtom(int depth) {
    const size_t at = pos_;
    const uint32_t c = cps_[pos_++];
    switch (c) {
      case '(': {
        if (Peek() == '?') {
          const uint32_t kind = Peek(1);
          if (kind == ':') {
            pos_ += 2;
          } else if (kind == 'P' && Peek(2) == '<') {
            pos_ += 3;
            if (absl::Status s = SkipGroupName(at); !s.ok()) return s;
          } else if (kind == '<' && Peek(2) != '=' && Peek(2) != '!') {
            pos_ += 2;
            if (absl::Status s = SkipGroupName(at); !s.ok()) return s;
          } else if (kind == '=' || kind == '!' || kind == '<') {
            return Unsupported(at, "lookaround (?=, (?!, (?<=, (?<!");
          } else {
            return Unsupported(at,
                               "group syntax '(?' (flags, atomic groups, "
                               "comments)");
          }
        }
        auto inner = ParseAlt(depth + 1);
        if (!inner.ok()) return inner.status();
        if (AtEnd() || Peek() != ')') return Error(at, "missing ')'");
        ++pos_;
        return inner;
      }
      case '[':
        return ParseClass(at);
      case '.':
        return SetNode(Negate({{'\n', '\n'}}));
      case '^':
        return Unsupported(at,
                           "anchor '^' inside the regex (the whole "
                           "output must match; '^' may only start it)");
      case '$':
        return Unsupported(at,
                           "anchor '$' inside the regex (the whole "
                           "output must match; '$' may only end it)");
      case '*':
      case '+':
      case '?':
        return Error(at, absl::StrCat("'", std::string(1, static_cast<char>(c)),
                                      "' has nothing before it to repeat"));
      case '{': {
        int min = 0, max = 0;
        --pos_;
        if (ParseQuantifier(&min, &max)) {
          return Error(at, "'{' has nothing before it to repeat");
        }
        ++pos_;
        return SetNode({{c, c}});
      }
      case '\\':
        return ParseEscape(at, /*in_class=*/false);
      default:
        return SetNode({{c, c}});
    }
  }

  absl::Status SkipGroupName(size_t at) {
    while (!AtEnd() && Peek() != '>') ++pos_;
    if (AtEnd()) return Error(at, "unterminated group name");
    ++pos_;
    return absl::OkStatus();
  }

  // After a backslash (pos_ at the escaped character). The result is a set.
  absl::StatusOr<Node> ParseEscape(size_t at, bool in_class) {
    if (AtEnd()) return Error(at, "trailing backslash");
    const uint32_t e = cps_[pos_++];
    auto hex = [&](int digits) -> absl::StatusOr<Node> {
      uint32_t cp = 0;
      for (int i = 0; i < digits; ++i) {
        const uint32_t h = Peek();
        int v = -1;
        if (h >= '0' && h <= '9') v = h - '0';
        if (h >= 'a' && h <= 'f') v = h - 'a' + 10;
        if (h >= 'A' && h <= 'F') v = h - 'A' + 10;
        if (v < 0 || AtEnd()) {
          return Error(at, absl::StrCat("escape '\\",
                                        std::string(1, static_cast<char>(e)),
                                        "' needs ", digits, " hex digits"));
        }
        cp = cp * 16 + v;
        ++pos_;
      }
      if (cp >= 0xD800 && cp <= 0xDFFF) {
        return Error(at, "surrogate code points are not characters");
      }
      return SetNode({{cp, cp}});
    };
    switch (e) {
      case 'd':
        return SetNode(Digits());
      case 'D':
        return SetNode(Negate(Digits()));
      case 'w':
        return SetNode(Word());
      case 'W':
        return SetNode(Negate(Word()));
      case 's':
        return SetNode(Space());
      case 'S':
        return SetNode(Negate(Space()));
      case 't':
        return SetNode({{'\t', '\t'}});
      case 'n':
        return SetNode({{'\n', '\n'}});
      case 'r':
        return SetNode({{'\r', '\r'}});
      case 'f':
        return SetNode({{'\f', '\f'}});
      case 'v':
        return SetNode({{'\v', '\v'}});
      case '0':
        return SetNode({{0, 0}});
      case 'x':
        return hex(2);
      case 'u':
        return hex(4);
      case 'b':
        if (in_class) return SetNode({{'\b', '\b'}});
        return Unsupported(at, "word boundary \\b");
      case 'B':
        return Unsupported(at, "word boundary \\B");
      case 'A':
      case 'Z':
      case 'z':
      case 'G':
        return Unsupported(
            at,
            absl::StrCat("anchor \\", std::string(1, static_cast<char>(e))));
      case 'p':
      case 'P':
        return Unsupported(at, "Unicode property \\p / \\P");
      case 'k':
        return Unsupported(at, "backreference \\k");
      default:
        break;
    }
    if (e >= '1' && e <= '9') {
      return Unsupported(at,
                         absl::StrCat("backreference \\",
                                      std::string(1, static_cast<char>(e))));
    }
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
      return Error(at, absl::StrCat("unknown escape '\\",
                                    std::string(1, static_cast<char>(e)), "'"));
    }
    return SetNode({{e, e}});  // escaped punctuation or any other character
  }

  absl::StatusOr<Node> ParseClass(size_t open) {
    CodepointRanges ranges;
    const bool negated = Peek() == '^';
    if (negated) ++pos_;
    bool first = true;
    while (true) {
      if (AtEnd()) return Error(open, "unterminated character class");
      const size_t at = pos_;
      uint32_t c = Peek();
      if (c == ']' && !first) break;
      first = false;
      if (c == '[' && Peek(1) == ':') {
        return Unsupported(at, "POSIX class [:name:]");
      }
      // One member: a character or an escape (which may be a set).
      CodepointRanges member;
      ++pos_;
      if (c == '\\') {
        auto e = ParseEscape(at, /*in_class=*/true);
        if (!e.ok()) return e.status();
        member = e->set;
      } else {
        member = {{c, c}};
      }
      const bool single =
          member.size() == 1 && member[0].first == member[0].second;
      if (single && Peek() == '-' && Peek(1) != ']' && pos_ + 1 < end_) {
        ++pos_;
        const size_t hi_at = pos_;
        uint32_t hi = cps_[pos_++];
        if (hi == '\\') {
          auto e = ParseEscape(hi_at, /*in_class=*/true);
          if (!e.ok()) return e.status();
          if (e->set.size() != 1 || e->set[0].first != e->set[0].second) {
            return Error(hi_at, "a class like \\d cannot end a range");
          }
          hi = e->set[0].first;
        }
        if (hi < member[0].first) {
          return Error(at, "character range is reversed");
        }
        member = {{member[0].first, hi}};
      }
      ranges.insert(ranges.end(), member.begin(), member.end());
    }
    ++pos_;
    Normalize(&ranges);
    if (negated) ranges = Complement(ranges);
    if (ranges.empty()) return Error(open, "character class matches nothing");
    return SetNode(std::move(ranges));
  }

  absl::string_view source_;
  std::vector<uint32_t> cps_;
  size_t pos_ = 0, begin_ = 0, end_ = 0;
  absl::Status q_error_;
};

// How a code point is written where the output is JSON string content.
std::string JsonEscape(uint32_t cp) {
  switch (cp) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\t':
      return "\\t";
    case '\r':
      return "\\r";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    default:
      return absl::StrFormat("\\u%04x", cp);
  }
}

bool NeedsJsonEscape(uint32_t cp) {
  return cp < 0x20 || cp == '"' || cp == '\\';
}

class Emitter {
 public:
  explicit Emitter(RegexTarget target) : target_(target) {}

  std::string Emit(const Node& n) {
    switch (n.kind) {
      case Node::kSet:
        return EmitSet(n.set);
      case Node::kAlt: {
        std::vector<std::string> parts;
        for (const Node& c : n.children) parts.push_back(Emit(c));
        return absl::StrCat("(", absl::StrJoin(parts, " | "), ")");
      }
      case Node::kRepeat: {
        // Emit() always returns one GBNF item; only a nested quantifier
        // needs parentheses to read clearly.
        std::string inner = Emit(n.children[0]);
        if (n.children[0].kind == Node::kRepeat) {
          inner = absl::StrCat("(", inner, ")");
        }
        if (n.min == 0 && n.max < 0) return inner + "*";
        if (n.min == 1 && n.max < 0) return inner + "+";
        if (n.min == 0 && n.max == 1) return inner + "?";
        if (n.max < 0) return absl::StrCat(inner, "{", n.min, ",}");
        if (n.min == n.max) return absl::StrCat(inner, "{", n.min, "}");
        return absl::StrCat(inner, "{", n.min, ",", n.max, "}");
      }
      case Node::kConcat:
        break;
    }
    // Runs of single characters become one literal.
    std::vector<std::string> parts;
    std::string run;
    auto flush = [&] {
      if (!run.empty()) parts.push_back(GbnfLiteral(run));
      run.clear();
    };
    for (const Node& c : n.children) {
      if (c.kind == Node::kSet && c.set.size() == 1 &&
          c.set[0].first == c.set[0].second) {
        const uint32_t cp = c.set[0].first;
        if (target_ == RegexTarget::kJsonStringContent && NeedsJsonEscape(cp)) {
          run += JsonEscape(cp);
        } else {
          AppendUtf8Codepoint(cp, &run);
        }
        continue;
      }
      flush();
      parts.push_back(Emit(c));
    }
    flush();
    if (parts.empty()) return "\"\"";
    if (parts.size() == 1) return parts[0];
    return absl::StrCat("(", absl::StrJoin(parts, " "), ")");
  }

 private:
  std::string EmitSet(const CodepointRanges& set) {
    if (target_ == RegexTarget::kText) return TextSet(set);
    // JSON: characters JSON must escape become their escape sequences.
    CodepointRanges plain;
    std::vector<std::string> alternatives;
    for (auto [lo, hi] : set) {
      for (uint32_t cp = lo; cp <= hi && cp < 0x80; ++cp) {
        if (NeedsJsonEscape(cp))
          alternatives.push_back(GbnfLiteral(JsonEscape(cp)));
      }
      uint32_t start = lo;
      for (uint32_t cp = lo; cp <= hi && cp < 0x80; ++cp) {
        if (NeedsJsonEscape(cp)) {
          if (cp > start) plain.push_back({start, cp - 1});
          start = cp + 1;
        }
      }
      if (start <= hi) plain.push_back({start, hi});
    }
    if (!plain.empty())
      alternatives.insert(alternatives.begin(), TextSet(plain));
    if (alternatives.size() == 1) return alternatives[0];
    return absl::StrCat("(", absl::StrJoin(alternatives, " | "), ")");
  }

  static std::string TextSet(const CodepointRanges& set) {
    if (set.size() == 1 && set[0].first == set[0].second) {
      return GbnfLiteral(set[0].first);
    }
    return GbnfClass(set);
  }

  RegexTarget target_;
};

}  // namespace

absl::StatusOr<std::string> RegexToGbnf(absl::string_view regex,
                                        RegexTarget target) {
  auto node = RegexParser(regex).Parse();
  if (!node.ok()) return node.status();
  return Emitter(target).Emit(*node);
}

}  // namespace lumen::engine::constrained
