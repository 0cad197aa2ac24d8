#include "chat/jinja/py_text.h"

#include <locale.h>
#include <string.h>
#include <wctype.h>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace lumen::chat::jinja {

char32_t DecodeUtf8(absl::string_view s, size_t* pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const size_t i = *pos;
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) {
    *pos = i + 1;
    return b0;
  }
  int extra = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    extra = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    *pos = i + 1;
    return 0xFFFD;
  }
  if (i + extra >= s.size()) {
    *pos = i + 1;
    return 0xFFFD;
  }
  for (int k = 1; k <= extra; ++k) {
    const uint8_t b = byte(i + k);
    if ((b & 0xC0) != 0x80) {
      *pos = i + 1;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF) {
    *pos = i + 1;
    return 0xFFFD;
  }
  *pos = i + 1 + extra;
  return cp;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

int64_t CodePointCount(absl::string_view s) {
  int64_t n = 0;
  for (size_t pos = 0; pos < s.size();) {
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      ++pos;
    } else {
      DecodeUtf8(s, &pos);
    }
    ++n;
  }
  return n;
}

std::vector<size_t> CodePointOffsets(absl::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (size_t pos = 0; pos < s.size();) {
    offsets.push_back(pos);
    DecodeUtf8(s, &pos);
  }
  offsets.push_back(s.size());
  return offsets;
}

bool IsPyWhitespace(char32_t c) {
  if (c <= 0x20) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

namespace {

// Code points of `chars` (the argument of strip).
std::vector<char32_t> CodePoints(absl::string_view s) {
  std::vector<char32_t> out;
  for (size_t pos = 0; pos < s.size();) out.push_back(DecodeUtf8(s, &pos));
  return out;
}

bool InSet(const std::vector<char32_t>& set, char32_t c) {
  for (char32_t x : set)
    if (x == c) return true;
  return false;
}

}  // namespace

absl::string_view PyStrip(absl::string_view s,
                          std::optional<absl::string_view> chars, bool left,
                          bool right) {
  const std::vector<char32_t> set =
      chars ? CodePoints(*chars) : std::vector<char32_t>{};
  auto strippable = [&](char32_t c) {
    return chars ? InSet(set, c) : IsPyWhitespace(c);
  };
  size_t begin = 0;
  size_t end = s.size();
  if (left) {
    while (begin < end) {
      size_t next = begin;
      if (!strippable(DecodeUtf8(s, &next))) break;
      begin = next;
    }
  }
  if (right) {
    while (end > begin) {
      // Step back to the start of the last code point (at most 4 bytes).
      size_t start = end - 1;
      while (start > begin && end - start < 4 &&
             (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) {
        --start;
      }
      size_t next = start;
      char32_t c = DecodeUtf8(s, &next);
      if (next != end) {  // not a whole code point: the last byte alone
        start = end - 1;
        next = start;
        c = DecodeUtf8(s, &next);
      }
      if (!strippable(c)) break;
      end = start;
    }
  }
  return s.substr(begin, end - begin);
}

std::vector<absl::string_view> PySplit(absl::string_view s,
                                       std::optional<absl::string_view> sep,
                                       int64_t maxsplit) {
  std::vector<absl::string_view> parts;
  if (!sep) {
    size_t pos = 0;
    while (pos < s.size()) {
      // Skip whitespace.
      size_t start = pos;
      while (start < s.size()) {
        size_t next = start;
        if (!IsPyWhitespace(DecodeUtf8(s, &next))) break;
        start = next;
      }
      if (start >= s.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
        // The rest, with trailing whitespace removed, is the last part.
        parts.push_back(PyStrip(s.substr(start), std::nullopt, false, true));
        return parts;
      }
      size_t end = start;
      while (end < s.size()) {
        size_t next = end;
        if (IsPyWhitespace(DecodeUtf8(s, &next))) break;
        end = next;
      }
      parts.push_back(s.substr(start, end - start));
      pos = end;
    }
    return parts;
  }
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    const size_t hit = FindBytes(s, *sep, pos);
    if (hit == absl::string_view::npos) break;
    parts.push_back(s.substr(pos, hit - pos));
    pos = hit + sep->size();
  }
  parts.push_back(s.substr(pos));
  return parts;
}

size_t FindBytes(absl::string_view haystack, absl::string_view needle,
                 size_t from) {
  if (from > haystack.size()) return absl::string_view::npos;
  if (needle.empty()) return from;
  // glibc's memmem is linear-time (two-way algorithm).
  const void* hit = memmem(haystack.data() + from, haystack.size() - from,
                           needle.data(), needle.size());
  if (hit == nullptr) return absl::string_view::npos;
  return static_cast<const char*>(hit) - haystack.data();
}

std::string PyReplace(absl::string_view s, absl::string_view old_text,
                      absl::string_view new_text, int64_t count) {
  std::string out;
  if (old_text.empty()) {
    int64_t done = 0;
    size_t pos = 0;
    while (true) {
      if (count < 0 || done < count) {
        absl::StrAppend(&out, new_text);
        ++done;
      }
      if (pos >= s.size()) break;
      const size_t start = pos;
      DecodeUtf8(s, &pos);
      absl::StrAppend(&out, s.substr(start, pos - start));
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = FindBytes(s, old_text, pos);
    if (hit == absl::string_view::npos) break;
    absl::StrAppend(&out, s.substr(pos, hit - pos));
    absl::StrAppend(&out, new_text);
    pos = hit + old_text.size();
    ++done;
  }
  absl::StrAppend(&out, s.substr(pos));
  return out;
}

namespace {

// glibc's C.UTF-8 locale carries the Unicode simple case mappings; created
// once, used only through the *_l functions (no global locale change).
locale_t CaseLocale() {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", nullptr);
  return loc;
}

char32_t ToUpper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  const locale_t loc = CaseLocale();
  return loc == nullptr ? c : static_cast<char32_t>(towupper_l(c, loc));
}

char32_t ToLower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  const locale_t loc = CaseLocale();
  return loc == nullptr ? c : static_cast<char32_t>(towlower_l(c, loc));
}

bool IsCased(char32_t c) { return ToUpper(c) != c || ToLower(c) != c; }

template <typename F>
std::string MapCodePoints(absl::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  size_t index = 0;
  char32_t previous = 0;
  for (size_t pos = 0; pos < s.size(); ++index) {
    const size_t start = pos;
    const char32_t c = DecodeUtf8(s, &pos);
    if (c == 0xFFFD && pos - start == 1 &&
        static_cast<uint8_t>(s[start]) >= 0x80) {
      out.push_back(s[start]);  // keep an invalid byte as it was
    } else {
      AppendUtf8(f(c, index, previous), &out);
    }
    previous = c;
  }
  return out;
}

}  // namespace

std::string PyUpper(absl::string_view s) {
  return MapCodePoints(s,
                       [](char32_t c, size_t, char32_t) { return ToUpper(c); });
}

std::string PyLower(absl::string_view s) {
  return MapCodePoints(s,
                       [](char32_t c, size_t, char32_t) { return ToLower(c); });
}

std::string PyCapitalize(absl::string_view s) {
  return MapCodePoints(s, [](char32_t c, size_t index, char32_t) {
    return index == 0 ? ToUpper(c) : ToLower(c);
  });
}

std::string PyTitle(absl::string_view s) {
  return MapCodePoints(s, [](char32_t c, size_t index, char32_t previous) {
    return index > 0 && IsCased(previous) ? ToLower(c) : ToUpper(c);
  });
}

std::string JinjaTitle(absl::string_view s) {
  // jinja2 splits on runs of [-\s({[<] and capitalizes every other piece.
  auto is_separator = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' ||
           IsPyWhitespace(c);
  };
  bool word_start = true;
  return MapCodePoints(s, [&](char32_t c, size_t, char32_t) {
    if (is_separator(c)) {
      word_start = true;
      return c;
    }
    const char32_t mapped = word_start ? ToUpper(c) : ToLower(c);
    word_start = false;
    return mapped;
  });
}

std::string PyFloatRepr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  // Shortest round-trip digits in scientific form: [-]d[.ddd]e[+-]xx.
  char buf[64];
  auto [end, ec] =
      std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  absl::string_view sci(buf, end - buf);
  bool negative = false;
  if (!sci.empty() && sci[0] == '-') {
    negative = true;
    sci.remove_prefix(1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos))
    if (c != '.') digits.push_back(c);
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0),
                  sci.data() + sci.size(), exponent);
  std::string out = negative ? "-" : "";
  const int n = static_cast<int>(digits.size());
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0.";
      out.append(-exponent - 1, '0');
      out += digits;
    } else if (exponent + 1 >= n) {
      out += digits;
      out.append(exponent + 1 - n, '0');
      out += ".0";
    } else {
      out += digits.substr(0, exponent + 1);
      out += ".";
      out += digits.substr(exponent + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (n > 1) {
    out += ".";
    out += digits.substr(1);
  }
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+',
                exponent < 0 ? -exponent : exponent);
  out += exp_buf;
  return out;
}

namespace {

// Python's str.isprintable(), approximated: controls, separators other than
// the space, and the common format characters are not printable.
bool IsPrintable(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c >= 0x80 && c <= 0xA0) return false;
  if (c == 0xAD || c == 0x1680 || (c >= 0x2000 && c <= 0x200F)) return false;
  if (c >= 0x2028 && c <= 0x202F) return false;
  if (c >= 0x205F && c <= 0x2064) return false;
  if (c == 0x3000 || c == 0xFEFF) return false;
  if (c >= 0xD800 && c <= 0xDFFF) return false;
  return true;
}

}  // namespace

std::string PyStrRepr(absl::string_view s) {
  const bool has_single = s.find('\'') != absl::string_view::npos;
  const bool has_double = s.find('"') != absl::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const char32_t c = DecodeUtf8(s, &pos);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == 0xFFFD && pos - start == 1 &&
               static_cast<uint8_t>(s[start]) >= 0x80) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x",
                    static_cast<uint8_t>(s[start]));
      out += buf;
    } else if (!IsPrintable(c)) {
      char buf[16];
      if (c < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      absl::StrAppend(&out, s.substr(start, pos - start));
    }
  }
  out.push_back(quote);
  return out;
}

}  // namespace lumen::chat::jinja
