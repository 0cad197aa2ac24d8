#include "engine/constrained/gbnf_parser.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/constrained/utf8_ranges.h"

namespace lumen::engine::constrained {

namespace {

using Sequence = std::vector<Element>;
constexpr int kMaxNesting = 200;
using Alternatives = std::vector<Sequence>;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Describe(char c) {
  const auto b = static_cast<unsigned char>(c);
  if (c == '\n' || c == '\r') return "end of line";
  if (b >= 0x20 && b < 0x7F) return absl::StrCat("'", std::string(1, c), "'");
  return absl::StrFormat("byte 0x%02X", b);
}

class GbnfParser {
 public:
  explicit GbnfParser(absl::string_view text) : src_(text) {}

  absl::StatusOr<Grammar> Parse() {
    SkipSpace(true);
    while (!AtEnd()) {
      if (absl::Status s = ParseRule(); !s.ok()) return s;
      SkipSpace(true);
    }
    // Report the undefined rule used first.
    const std::string* undefined = nullptr;
    for (const auto& [name, sym] : symbols_) {
      if (!sym.defined && (undefined == nullptr ||
                           sym.first_use < symbols_.at(*undefined).first_use)) {
        undefined = &name;
      }
    }
    if (undefined != nullptr) {
      return ErrorAt(symbols_.at(*undefined).first_use,
                     absl::StrCat("undefined rule '", *undefined, "'"));
    }
    auto root = symbols_.find("root");
    if (root == symbols_.end()) {
      return absl::InvalidArgumentError(
          "grammar: no 'root' rule (the grammar starts at root ::= ...)");
    }
    auto grammar = std::move(builder_).Build(root->second.id);
    if (!grammar.ok()) {
      return absl::Status(
          grammar.status().code(),
          absl::StrCat("grammar: ", grammar.status().message()));
    }
    return grammar;
  }

 private:
  struct Symbol {
    int32_t id;
    bool defined = false;
    size_t first_use = 0;
    size_t defined_at = 0;
  };

  bool AtEnd() const { return pos_ >= src_.size(); }
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0';
  }

  absl::Status ErrorAt(size_t offset, absl::string_view message) const {
    int line = 1, column = 1;
    for (size_t i = 0; i < offset && i < src_.size(); ++i) {
      const auto b = static_cast<unsigned char>(src_[i]);
      if (b == '\n') {
        ++line;
        column = 1;
      } else if ((b & 0xC0) != 0x80) {
        ++column;  // count characters, not UTF-8 continuation bytes
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "grammar line ", line, ", column ", column, ": ", message));
  }
  std::string LineColumn(size_t offset) const {
    const std::string m(ErrorAt(offset, "").message());
    return m.substr(8, m.size() - 10);  // "line L, column C"
  }

  // Spaces, tabs and comments; line breaks too when `newlines`.
  void SkipSpace(bool newlines) {
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '#') {
        while (!AtEnd() && Peek() != '\n' && Peek() != '\r') ++pos_;
      } else if (c == ' ' || c == '\t' ||
                 (newlines && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  int32_t SymbolFor(const std::string& name, size_t offset) {
    auto it = symbols_.find(name);
    if (it == symbols_.end()) {
      it = symbols_.emplace(name, Symbol{builder_.AddRule(name)}).first;
      it->second.first_use = offset;
    }
    return it->second.id;
  }

  // A rule the parser introduces inside the current source rule.
  int32_t HelperRule() {
    return builder_.AddRule(
        absl::StrCat(builder_.RuleName(current_rule_), "_", ++num_helpers_),
        current_rule_);
  }

  absl::StatusOr<int32_t> RuleOf(const Alternatives& alternatives) {
    const int32_t id = HelperRule();
    for (const Sequence& seq : alternatives) {
      if (absl::Status s = builder_.AddAlternative(id, seq); !s.ok()) return s;
    }
    return id;
  }

  absl::Status ParseRule() {
    const size_t start = pos_;
    std::string name;
    while (!AtEnd() && IsNameChar(Peek())) name += src_[pos_++];
    if (name.empty()) {
      return ErrorAt(
          pos_, absl::StrCat("expected a rule name, found ", Describe(Peek())));
    }
    SkipSpace(false);
    if (src_.substr(pos_, 3) != "::=") {
      return ErrorAt(
          pos_, absl::StrCat("expected '::=' after rule name '", name, "'"));
    }
    pos_ += 3;
    const int32_t id = SymbolFor(name, start);
    Symbol& sym = symbols_.at(name);
    if (sym.defined) {
      return ErrorAt(
          start, absl::StrCat("rule '", name, "' is defined twice (first at ",
                              LineColumn(sym.defined_at), ")"));
    }
    sym.defined = true;
    sym.defined_at = start;
    current_rule_ = id;
    num_helpers_ = 0;
    SkipSpace(true);
    auto alternatives = ParseAlternates(/*depth=*/0);
    if (!alternatives.ok()) return alternatives.status();
    SkipSpace(false);
    if (!AtEnd() && Peek() != '\n' && Peek() != '\r') {
      return ErrorAt(pos_, absl::StrCat("unexpected ", Describe(Peek()),
                                        " in rule '", name, "'"));
    }
    for (const Sequence& seq : *alternatives) {
      if (absl::Status s = builder_.AddAlternative(id, seq); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // depth 0: a rule's top level, where a line break ends the rule; deeper:
  // inside parentheses.
  absl::StatusOr<Alternatives> ParseAlternates(int depth) {
    const bool nested = depth > 0;
    if (depth > kMaxNesting) {
      return ErrorAt(
          pos_, absl::StrCat("parentheses nested deeper than ", kMaxNesting));
    }
    Alternatives alternatives;
    while (true) {
      auto seq = ParseSequence(depth);
      if (!seq.ok()) return seq.status();
      alternatives.push_back(std::move(*seq));
      if (!nested) {
        // A top-level rule may continue with '|' on the next line.
        const size_t save = pos_;
        SkipSpace(true);
        if (Peek() != '|') pos_ = save;
      }
      if (Peek() != '|') return alternatives;
      ++pos_;
      SkipSpace(true);
    }
  }

  absl::StatusOr<Sequence> ParseSequence(int depth) {
    const bool nested = depth > 0;
    Sequence seq;
    std::optional<size_t> last_item;  // where the last item's elements start
    while (!AtEnd()) {
      const char c = Peek();
      const size_t at = pos_;
      if (c == '"') {
        last_item = seq.size();
        if (absl::Status s = ParseLiteral(&seq); !s.ok()) return s;
      } else if (c == '[') {
        last_item = seq.size();
        auto e = ParseClass();
        if (!e.ok()) return e.status();
        seq.push_back(*e);
      } else if (c == '.') {
        ++pos_;
        last_item = seq.size();
        CodepointRanges any = {{0, kMaxCodepoint}};
        RemoveSurrogates(&any);
        auto e = ClassElement(any);
        if (!e.ok()) return e.status();
        seq.push_back(*e);
      } else if (IsNameChar(c)) {
        std::string name;
        while (!AtEnd() && IsNameChar(Peek())) name += src_[pos_++];
        last_item = seq.size();
        seq.push_back({ElementKind::kRule, SymbolFor(name, at)});
      } else if (c == '(') {
        ++pos_;
        SkipSpace(true);
        auto group = ParseAlternates(depth + 1);
        if (!group.ok()) return group.status();
        if (Peek() != ')') {
          return ErrorAt(
              pos_, absl::StrCat("expected ')' to close the '(' at ",
                                 LineColumn(at), ", found ",
                                 AtEnd() ? "end of input" : Describe(Peek())));
        }
        ++pos_;
        last_item = seq.size();
        if (group->size() == 1) {
          seq.insert(seq.end(), (*group)[0].begin(), (*group)[0].end());
        } else {
          auto id = RuleOf(*group);
          if (!id.ok()) return id.status();
          seq.push_back({ElementKind::kRule, *id});
        }
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!last_item) {
          return ErrorAt(at, absl::StrCat("'", std::string(1, c),
                                          "' has nothing before it to repeat"));
        }
        if (absl::Status s = ParseRepetition(*last_item, &seq); !s.ok()) {
          return s;
        }
      } else if (c == '<') {
        return ErrorAt(at, "token references (<...>) are not supported");
      } else {
        break;  // '|', ')', end of line, or an error the caller reports
      }
      SkipSpace(nested);
    }
    return seq;
  }

  // Reads one character of a literal or class at pos_ (escape or UTF-8).
  absl::StatusOr<uint32_t> ParseChar() {
    const size_t at = pos_;
    if (Peek() != '\\') {
      uint32_t cp = 0;
      if (!DecodeUtf8Codepoint(src_, &pos_, &cp)) {
        return ErrorAt(at, "invalid UTF-8");
      }
      return cp;
    }
    ++pos_;
    const char e = Peek();
    ++pos_;
    int digits = 0;
    switch (e) {
      case 'x':
        digits = 2;
        break;
      case 'u':
        digits = 4;
        break;
      case 'U':
        digits = 8;
        break;
      case 't':
        return '\t';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case '\\':
      case '"':
      case '[':
      case ']':
      case '-':
      case '^':
      case '/':
        return static_cast<uint32_t>(e);
      default:
        return ErrorAt(at, absl::StrCat("unknown escape '\\",
                                        AtEnd() ? "" : std::string(1, e),
                                        "' (known: \\x \\u \\U \\t \\n \\r "
                                        "\\\\ \\\" \\[ \\] \\- \\^ \\/)"));
    }
    uint32_t cp = 0;
    for (int i = 0; i < digits; ++i) {
      const int h = HexValue(Peek());
      if (h < 0) {
        return ErrorAt(at, absl::StrCat("escape '\\", std::string(1, e),
                                        "' needs ", digits, " hex digits"));
      }
      cp = cp * 16 + h;
      ++pos_;
    }
    if (cp > kMaxCodepoint || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return ErrorAt(at, absl::StrFormat("escape U+%04X is not a character "
                                         "(surrogate or beyond U+10FFFF)",
                                         cp));
    }
    return cp;
  }

  absl::Status ParseLiteral(Sequence* seq) {
    const size_t open = pos_;
    ++pos_;
    while (true) {
      if (AtEnd() || Peek() == '\n' || Peek() == '\r') {
        return ErrorAt(open, "unterminated string literal");
      }
      if (Peek() == '"') break;
      auto cp = ParseChar();
      if (!cp.ok()) return cp.status();
      std::string bytes;
      AppendUtf8Codepoint(*cp, &bytes);
      for (char b : bytes) {
        ByteSet set;
        set.Add(static_cast<uint8_t>(b));
        seq->push_back({ElementKind::kBytes, builder_.AddByteSet(set)});
      }
    }
    ++pos_;
    return absl::OkStatus();
  }

  absl::StatusOr<Element> ParseClass() {
    const size_t open = pos_;
    ++pos_;
    const bool negated = Peek() == '^';
    if (negated) ++pos_;
    CodepointRanges ranges;
    while (true) {
      if (AtEnd() || Peek() == '\n' || Peek() == '\r') {
        return ErrorAt(open, "unterminated character class");
      }
      if (Peek() == ']') break;
      const size_t at = pos_;
      auto lo = ParseChar();
      if (!lo.ok()) return lo.status();
      uint32_t hi = *lo;
      if (Peek() == '-' && Peek(1) != ']' && pos_ + 1 < src_.size()) {
        ++pos_;
        auto h = ParseChar();
        if (!h.ok()) return h.status();
        hi = *h;
        if (hi < *lo) {
          return ErrorAt(
              at, absl::StrFormat("character range U+%04X-U+%04X is reversed",
                                  *lo, hi));
        }
      }
      ranges.push_back({*lo, hi});
    }
    ++pos_;
    Normalize(&ranges);
    if (negated) {
      ranges = Complement(ranges);
    } else {
      RemoveSurrogates(&ranges);
    }
    if (ranges.empty()) {
      return ErrorAt(open, "character class matches no character");
    }
    return ClassElement(ranges);
  }

  // One element matching exactly one character of `ranges`: a byte set when
  // they are all ASCII, else a (shared) rule of UTF-8 byte sequences.
  absl::StatusOr<Element> ClassElement(const CodepointRanges& ranges) {
    const std::vector<Utf8Sequence> seqs = ToUtf8Sequences(ranges);
    ByteSet ascii;
    Alternatives multibyte;
    for (const Utf8Sequence& s : seqs) {
      if (s.length == 1) {
        ascii.AddRange(s.lo[0], s.hi[0]);
        continue;
      }
      Sequence alt;
      for (int i = 0; i < s.length; ++i) {
        ByteSet b;
        b.AddRange(s.lo[i], s.hi[i]);
        alt.push_back({ElementKind::kBytes, builder_.AddByteSet(b)});
      }
      multibyte.push_back(std::move(alt));
    }
    if (multibyte.empty()) {
      return Element{ElementKind::kBytes, builder_.AddByteSet(ascii)};
    }
    auto cached = class_rules_.find(ranges);
    if (cached != class_rules_.end()) {
      return Element{ElementKind::kRule, cached->second};
    }
    if (!ascii.Empty()) {
      multibyte.insert(
          multibyte.begin(),
          Sequence{{ElementKind::kBytes, builder_.AddByteSet(ascii)}});
    }
    auto id = RuleOf(multibyte);
    if (!id.ok()) return id.status();
    class_rules_.emplace(ranges, *id);
    return Element{ElementKind::kRule, *id};
  }

  absl::StatusOr<int> ParseCount() {
    if (!(Peek() >= '0' && Peek() <= '9')) return -1;
    int64_t n = 0;
    const size_t at = pos_;
    while (Peek() >= '0' && Peek() <= '9') {
      n = n * 10 + (src_[pos_++] - '0');
      if (n > kMaxRepetition) {
        return ErrorAt(at, absl::StrCat("repetition count above the limit of ",
                                        kMaxRepetition));
      }
    }
    return static_cast<int>(n);
  }

  // Applies the operator at pos_ to the item seq[item_start..].
  absl::Status ParseRepetition(size_t item_start, Sequence* seq) {
    const size_t at = pos_;
    const char op = src_[pos_++];
    int min = 0, max = -1;  // max -1: unbounded
    if (op == '+') {
      min = 1;
    } else if (op == '?') {
      max = 1;
    } else if (op == '{') {
      SkipSpace(false);
      auto m = ParseCount();
      if (!m.ok()) return m.status();
      SkipSpace(false);
      int n = *m;
      bool valid = *m >= 0;
      if (Peek() == ',') {
        ++pos_;
        SkipSpace(false);
        auto hi = ParseCount();
        if (!hi.ok()) return hi.status();
        n = *hi;
        valid = valid || n >= 0;
        SkipSpace(false);
      }
      if (Peek() != '}' || !valid) {
        return ErrorAt(at, "expected {m}, {m,}, {m,n} or {,n}");
      }
      ++pos_;
      min = std::max(*m, 0);
      max = n;
      if (max >= 0 && max < min) {
        return ErrorAt(at, absl::StrCat("repetition {", min, ",", max,
                                        "} has its maximum below its minimum"));
      }
    }
    Element item;
    if (seq->size() - item_start == 1) {
      item = (*seq)[item_start];
    } else {
      auto id = RuleOf({Sequence(seq->begin() + item_start, seq->end())});
      if (!id.ok()) return id.status();
      item = {ElementKind::kRule, *id};
    }
    seq->resize(item_start);
    for (int i = 0; i < min; ++i) seq->push_back(item);
    if (max < 0) {
      // star ::= item star | (empty)
      const int32_t star = HelperRule();
      const Element self{ElementKind::kRule, star};
      if (absl::Status s = builder_.AddAlternative(star, {{item, self}});
          !s.ok()) {
        return s;
      }
      if (absl::Status s = builder_.AddAlternative(star, {}); !s.ok()) {
        return s;
      }
      seq->push_back(self);
    } else if (max > min) {
      // opt_k ::= item opt_{k-1} | (empty), nested max - min deep.
      std::optional<Element> inner;
      for (int k = 0; k < max - min; ++k) {
        const int32_t opt = HelperRule();
        Sequence first = {item};
        if (inner) first.push_back(*inner);
        if (absl::Status s = builder_.AddAlternative(opt, first); !s.ok()) {
          return s;
        }
        if (absl::Status s = builder_.AddAlternative(opt, {}); !s.ok()) {
          return s;
        }
        inner = Element{ElementKind::kRule, opt};
      }
      seq->push_back(*inner);
    }
    return absl::OkStatus();
  }

  absl::string_view src_;
  size_t pos_ = 0;
  GrammarBuilder builder_;
  absl::flat_hash_map<std::string, Symbol> symbols_;
  absl::flat_hash_map<CodepointRanges, int32_t> class_rules_;
  int32_t current_rule_ = 0;
  int num_helpers_ = 0;
};

}  // namespace

absl::StatusOr<Grammar> ParseGbnf(absl::string_view text) {
  return GbnfParser(text).Parse();
}

}  // namespace lumen::engine::constrained
