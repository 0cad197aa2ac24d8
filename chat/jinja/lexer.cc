#include "chat/jinja/lexer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja {

std::string FormatPos(const SourcePos& pos) {
  return absl::StrCat("line ", pos.line, ", column ", pos.column);
}

namespace {

// jinja2 reads the source with universal newlines and drops one trailing
// newline (keep_trailing_newline=False).
std::string NormalizeNewlines(absl::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  Lexer(absl::string_view source, const LexerOptions& options)
      : src_(NormalizeNewlines(source)), options_(options) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  absl::StatusOr<std::vector<Token>> Run() {
    while (pos_ < src_.size()) {
      const size_t tag = FindTagStart(pos_);
      if (tag == std::string::npos) {
        EmitText(absl::string_view(src_).substr(pos_), pos_);
        break;
      }
      if (absl::Status s = LexTag(tag); !s.ok()) return s;
    }
    Token end;
    end.kind = TokenKind::kEnd;
    end.pos = PosAt(src_.size());
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

 private:
  SourcePos PosAt(size_t offset) const {
    const auto it =
        std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - line_starts_.begin());
    SourcePos p;
    p.line = static_cast<int>(line);
    p.column = static_cast<int>(offset - line_starts_[line - 1]) + 1;
    return p;
  }

  absl::Status Error(size_t offset, absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(FormatPos(PosAt(offset)), ": ", message));
  }

  size_t FindTagStart(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos;
         i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size()) {
        const char c = src_[i + 1];
        if (c == '{' || c == '%' || c == '#') return i;
      }
    }
    return std::string::npos;
  }

  // Whitespace as Python's `\s` matches it, from `pos`.
  size_t SkipWhitespace(size_t pos) const {
    while (pos < src_.size()) {
      size_t next = pos;
      if (!IsPyWhitespace(DecodeUtf8(src_, &next))) break;
      pos = next;
    }
    return pos;
  }

  bool AllWhitespace(absl::string_view s) const {
    for (size_t pos = 0; pos < s.size();) {
      if (!IsPyWhitespace(DecodeUtf8(s, &pos))) return false;
    }
    return true;
  }

  bool StartsWith(size_t pos, absl::string_view prefix) const {
    return absl::string_view(src_)
               .substr(std::min(pos, src_.size()))
               .substr(0, prefix.size()) == prefix;
  }

  void EmitText(absl::string_view text, size_t offset) {
    if (text.empty()) return;
    Token t;
    t.kind = TokenKind::kText;
    t.pos = PosAt(offset);
    t.text = std::string(text);
    tokens_.push_back(std::move(t));
  }

  void Emit(TokenKind kind, size_t offset, std::string text = {}) {
    Token t;
    t.kind = kind;
    t.pos = PosAt(offset);
    t.text = std::move(text);
    tokens_.push_back(std::move(t));
  }

  // The text before a tag, with the tag's whitespace control applied:
  // `-` strips all whitespace, lstrip_blocks strips the spaces that start
  // the tag's line (block and comment tags only).
  absl::string_view StripBeforeTag(absl::string_view text, char sign,
                                   bool is_variable) const {
    if (sign == '-') return PyStrip(text, std::nullopt, false, true);
    if (sign == '+' || !options_.lstrip_blocks || is_variable) return text;
    const size_t newline = text.rfind('\n');
    const size_t line_begin =
        newline == absl::string_view::npos ? 0 : newline + 1;
    if (line_begin > 0 || line_starting_) {
      const absl::string_view rest = text.substr(line_begin);
      if (!rest.empty() && AllWhitespace(rest))
        return text.substr(0, line_begin);
    }
    return text;
  }

  // `{% raw %}` (with optional -/+): the offset just past it, or npos.
  size_t MatchRawBegin(size_t after_sign) const {
    size_t p = SkipWhitespace(after_sign);
    if (!StartsWith(p, "raw")) return std::string::npos;
    p = SkipWhitespace(p + 3);
    if (StartsWith(p, "-%}")) return SkipWhitespace(p + 3);
    if (StartsWith(p, "%}")) return p + 2;
    return std::string::npos;
  }

  absl::Status LexTag(size_t tag) {
    const char kind = src_[tag + 1];
    size_t after = tag + 2;
    char sign = 0;
    if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) {
      sign = src_[after++];
    }
    const absl::string_view text = StripBeforeTag(
        absl::string_view(src_).substr(pos_, tag - pos_), sign, kind == '{');
    EmitText(text, pos_);
    if (kind == '#') return LexComment(tag, after);
    if (kind == '%') {
      const size_t raw_body = MatchRawBegin(after);
      if (raw_body != std::string::npos) return LexRaw(tag, raw_body);
    }
    Emit(kind == '%' ? TokenKind::kBlockBegin : TokenKind::kVariableBegin, tag);
    pos_ = after;
    return LexInsideTag(tag, kind == '%');
  }

  absl::Status LexComment(size_t tag, size_t content) {
    const size_t close = src_.find("#}", content);
    if (close == std::string::npos) {
      return Error(tag, "missing end of comment tag");
    }
    size_t end = close + 2;
    const char before = close > content ? src_[close - 1] : 0;
    if (before == '-') {
      end = SkipWhitespace(end);
    } else if (before != '+' && options_.trim_blocks && end < src_.size() &&
               src_[end] == '\n') {
      ++end;
    }
    line_starting_ = src_[end - 1] == '\n';
    pos_ = end;
    return absl::OkStatus();
  }

  absl::Status LexRaw(size_t tag, size_t body) {
    line_starting_ = src_[body - 1] == '\n';
    for (size_t open = src_.find("{%", body); open != std::string::npos;
         open = src_.find("{%", open + 1)) {
      size_t p = open + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) {
        sign = src_[p++];
      }
      p = SkipWhitespace(p);
      if (!StartsWith(p, "endraw")) continue;
      p = SkipWhitespace(p + 6);
      size_t end;
      if (StartsWith(p, "+%}")) {
        end = p + 3;
      } else if (StartsWith(p, "-%}")) {
        end = SkipWhitespace(p + 3);
      } else if (StartsWith(p, "%}")) {
        end = p + 2;
        if (options_.trim_blocks && end < src_.size() && src_[end] == '\n')
          ++end;
      } else {
        continue;
      }
      EmitText(StripBeforeTag(absl::string_view(src_).substr(body, open - body),
                              sign, false),
               body);
      line_starting_ = src_[end - 1] == '\n';
      pos_ = end;
      return absl::OkStatus();
    }
    return Error(tag, "missing end of raw directive");
  }

  // Tokens inside {{ }} or {% %} up to and including the end of the tag.
  absl::Status LexInsideTag(size_t tag, bool is_block) {
    std::vector<char> closers;  // expected closing brackets
    while (true) {
      if (pos_ >= src_.size()) {
        return Error(tag, is_block ? "unexpected end of template: missing %}"
                                   : "unexpected end of template: missing }}");
      }
      if (closers.empty() && LexTagEnd(is_block)) return absl::OkStatus();
      const char c = src_[pos_];
      const size_t start = pos_;
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
          c == '\v' || static_cast<unsigned char>(c) >= 0x80) {
        const size_t next = SkipWhitespace(pos_);
        if (next == pos_) {
          return Error(pos_, "unexpected character in tag");
        }
        pos_ = next;
        continue;
      }
      if (IsDigit(c)) {
        if (absl::Status s = LexNumber(); !s.ok()) return s;
        continue;
      }
      if (IsNameStart(c)) {
        while (pos_ < src_.size() && IsNameChar(src_[pos_])) ++pos_;
        Emit(TokenKind::kName, start, src_.substr(start, pos_ - start));
        continue;
      }
      if (c == '\'' || c == '"') {
        if (absl::Status s = LexString(); !s.ok()) return s;
        continue;
      }
      static constexpr absl::string_view kTwoChar[] = {
          "//", "**", "==", "!=", ">=", "<="};
      bool matched = false;
      for (absl::string_view op : kTwoChar) {
        if (StartsWith(pos_, op)) {
          Emit(TokenKind::kOperator, start, std::string(op));
          pos_ += 2;
          matched = true;
          break;
        }
      }
      if (matched) continue;
      static constexpr absl::string_view kOneChar = "+-/*%~[](){}><=.:|,;";
      if (kOneChar.find(c) == absl::string_view::npos) {
        return Error(pos_, absl::StrCat("unexpected character '",
                                        std::string(1, c), "' in tag"));
      }
      if (c == '(' || c == '[' || c == '{') {
        closers.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if (c == ')' || c == ']' || c == '}') {
        if (closers.empty()) {
          return Error(pos_,
                       absl::StrCat("unexpected '", std::string(1, c), "'"));
        }
        if (closers.back() != c) {
          return Error(pos_, absl::StrCat("unexpected '", std::string(1, c),
                                          "', expected '",
                                          std::string(1, closers.back()), "'"));
        }
        closers.pop_back();
      }
      Emit(TokenKind::kOperator, start, std::string(1, c));
      ++pos_;
    }
  }

  // Consumes the end of the tag at pos_ if there is one.
  bool LexTagEnd(bool is_block) {
    const size_t start = pos_;
    if (is_block) {
      if (StartsWith(pos_, "+%}")) {
        pos_ += 3;
      } else if (StartsWith(pos_, "-%}")) {
        pos_ = SkipWhitespace(pos_ + 3);
      } else if (StartsWith(pos_, "%}")) {
        pos_ += 2;
        if (options_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n')
          ++pos_;
      } else {
        return false;
      }
      Emit(TokenKind::kBlockEnd, start);
    } else {
      if (StartsWith(pos_, "-}}")) {
        pos_ = SkipWhitespace(pos_ + 3);
      } else if (StartsWith(pos_, "}}")) {
        pos_ += 2;
      } else {
        return false;
      }
      Emit(TokenKind::kVariableEnd, start);
    }
    line_starting_ = src_[pos_ - 1] == '\n';
    return true;
  }

  // Digits with single underscores between them, from pos_.
  size_t ScanDigits(size_t p, bool (*is_digit)(char)) const {
    const size_t start = p;
    while (p < src_.size()) {
      if (is_digit(src_[p])) {
        ++p;
      } else if (src_[p] == '_' && p > start && p + 1 < src_.size() &&
                 is_digit(src_[p + 1])) {
        ++p;
      } else {
        break;
      }
    }
    return p;
  }

  absl::Status LexNumber() {
    const size_t start = pos_;
    const bool after_dot = start > 0 && src_[start - 1] == '.';
    size_t p = ScanDigits(start, IsDigit);
    // Float: digits, then a fraction and/or an exponent.
    if (!after_dot) {
      size_t q = p;
      bool is_float = false;
      if (q + 1 < src_.size() && src_[q] == '.' && IsDigit(src_[q + 1])) {
        q = ScanDigits(q + 1, IsDigit);
        is_float = true;
      }
      if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
        size_t r = q + 1;
        if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) ++r;
        if (r < src_.size() && IsDigit(src_[r])) {
          q = ScanDigits(r, IsDigit);
          is_float = true;
        }
      }
      if (is_float) {
        std::string digits;
        for (size_t i = start; i < q; ++i)
          if (src_[i] != '_') digits.push_back(src_[i]);
        Token t;
        t.kind = TokenKind::kFloat;
        t.pos = PosAt(start);
        t.float_value = std::strtod(digits.c_str(), nullptr);
        tokens_.push_back(std::move(t));
        pos_ = q;
        return absl::OkStatus();
      }
    }
    int base = 10;
    size_t digits_start = start;
    if (src_[start] == '0' && start + 1 < src_.size()) {
      const char x = src_[start + 1];
      if (x == 'x' || x == 'X') base = 16;
      if (x == 'o' || x == 'O') base = 8;
      if (x == 'b' || x == 'B') base = 2;
      if (base != 10) {
        digits_start = start + 2;
        if (digits_start < src_.size() && src_[digits_start] == '_')
          ++digits_start;
        p = digits_start;
        while (p < src_.size() &&
               (src_[p] == '_' ||
                (HexValue(src_[p]) >= 0 && HexValue(src_[p]) < base))) {
          ++p;
        }
        if (p == digits_start) return Error(start, "invalid number literal");
      }
    }
    uint64_t value = 0;
    for (size_t i = digits_start; i < p; ++i) {
      if (src_[i] == '_') continue;
      const uint64_t d = static_cast<uint64_t>(HexValue(src_[i]));
      if (value > (std::numeric_limits<int64_t>::max() - d) / base) {
        return Error(start, "integer literal too large");
      }
      value = value * base + d;
    }
    Token t;
    t.kind = TokenKind::kInteger;
    t.pos = PosAt(start);
    t.int_value = static_cast<int64_t>(value);
    tokens_.push_back(std::move(t));
    pos_ = p;
    return absl::OkStatus();
  }

  // A quoted string with Python's escapes (jinja2 decodes literals with
  // "unicode-escape"): unknown escapes keep their backslash.
  absl::Status LexString() {
    const size_t start = pos_;
    const char quote = src_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) return Error(start, "unterminated string");
      const char c = src_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\') {
        value.push_back(c);
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= src_.size()) return Error(start, "unterminated string");
      const char e = src_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '\n':
          break;  // line continuation
        case '\\':
        case '\'':
        case '"':
          value.push_back(e);
          break;
        case 'a':
          value.push_back('\a');
          break;
        case 'b':
          value.push_back('\b');
          break;
        case 'f':
          value.push_back('\f');
          break;
        case 'n':
          value.push_back('\n');
          break;
        case 'r':
          value.push_back('\r');
          break;
        case 't':
          value.push_back('\t');
          break;
        case 'v':
          value.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (int i = 0; i < n; ++i) {
            const int h =
                pos_ + i < src_.size() ? HexValue(src_[pos_ + i]) : -1;
            if (h < 0) {
              return Error(pos_ - 2,
                           absl::StrCat("truncated \\", std::string(1, e),
                                        " escape in string"));
            }
            cp = cp * 16 + h;
          }
          if (cp > 0x10FFFF) {
            return Error(pos_ - 2, "escape beyond U+10FFFF in string");
          }
          pos_ += n;
          AppendUtf8(cp, &value);
          break;
        }
        case 'N':
          return Error(pos_ - 2, "\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = e - '0';
            for (int i = 0; i < 2 && pos_ < src_.size() && src_[pos_] >= '0' &&
                            src_[pos_] <= '7';
                 ++i) {
              cp = cp * 8 + (src_[pos_++] - '0');
            }
            AppendUtf8(cp, &value);
          } else {
            value.push_back('\\');
            value.push_back(e);
          }
      }
    }
    Emit(TokenKind::kString, start, std::move(value));
    return absl::OkStatus();
  }

  const std::string src_;
  const LexerOptions options_;
  std::vector<size_t> line_starts_;  // [lines] offset of each line
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  bool line_starting_ = true;  // the last tag ended with a newline
};

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view source,
                                            const LexerOptions& options) {
  Lexer lexer(source, options);
  return lexer.Run();
}

}  // namespace lumen::chat::jinja
