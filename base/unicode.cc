#include "base/unicode.h"

#include <algorithm>

#include "base/unicode_data.h"

namespace lumen {

namespace ud = unicode_data;

uint8_t CodepointCategory(uint32_t cp) {
  const ud::CategoryRange* begin = ud::kCategoryRanges;
  const ud::CategoryRange* end = begin + ud::kNumCategoryRanges;
  auto it = std::upper_bound(
      begin, end, cp,
      [](uint32_t v, const ud::CategoryRange& r) { return v < r.first; });
  return it == begin ? 0 : (it - 1)->flags;
}

bool IsCjk(uint32_t cp) {
  return (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7AF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FA1F);
}

bool IsWhitespace(uint32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
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
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

int Utf8SequenceLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

std::vector<uint32_t> DecodeUtf8(absl::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    const int len = Utf8SequenceLength(c);
    if (len == 1) {
      out.push_back(c < 0x80 ? c : 0xFFFD);
      ++i;
      continue;
    }
    if (i + len > n) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    uint32_t cp = c & (0x7F >> len);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string EncodeUtf8(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (uint32_t cp : cps) AppendUtf8(cp, &out);
  return out;
}

namespace {

enum class Utf8Scan { kComplete, kIllFormed, kTruncated };

// Examines the sequence starting at s[0] (n > 0 bytes available) against
// Unicode's table of well-formed byte sequences. `*length` is the length of
// the complete character, or of the maximal prefix that could begin one (at
// least 1) when the result is kIllFormed or kTruncated (cut by the end).
Utf8Scan ScanUtf8(const uint8_t* s, size_t n, size_t* length) {
  const uint8_t lead = s[0];
  *length = 1;
  if (lead < 0x80) return Utf8Scan::kComplete;
  size_t trail;                  // continuation bytes needed
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the first one
  if (lead >= 0xC2 && lead <= 0xDF) {
    trail = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    trail = 2;
    if (lead == 0xE0) lo = 0xA0;  // no overlong forms
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    trail = 3;
    if (lead == 0xF0) lo = 0x90;  // no overlong forms
    if (lead == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return Utf8Scan::kIllFormed;  // 80..C1, F5..FF never start a character
  }
  for (size_t k = 1; k <= trail; ++k) {
    if (k == n) return Utf8Scan::kTruncated;
    if (s[k] < lo || s[k] > hi) return Utf8Scan::kIllFormed;
    *length = k + 1;
    lo = 0x80;
    hi = 0xBF;
  }
  return Utf8Scan::kComplete;
}

}  // namespace

bool IsValidUtf8(absl::string_view bytes) {
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t len = 0;
  for (size_t i = 0; i < bytes.size(); i += len) {
    if (ScanUtf8(s + i, bytes.size() - i, &len) != Utf8Scan::kComplete) {
      return false;
    }
  }
  return true;
}

size_t Utf8CharLength(absl::string_view bytes) {
  if (bytes.empty()) return 0;
  size_t len = 0;
  const Utf8Scan scan = ScanUtf8(reinterpret_cast<const uint8_t*>(bytes.data()),
                                 bytes.size(), &len);
  return scan == Utf8Scan::kComplete ? len : 0;
}

std::string ToValidUtf8(absl::string_view bytes) {
  if (IsValidUtf8(bytes)) return std::string(bytes);
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  std::string out;
  out.reserve(bytes.size() + 8);
  size_t len = 0;
  for (size_t i = 0; i < bytes.size(); i += len) {
    if (ScanUtf8(s + i, bytes.size() - i, &len) == Utf8Scan::kComplete) {
      out.append(bytes.data() + i, len);
    } else {
      out.append("\xef\xbf\xbd");  // U+FFFD
    }
  }
  return out;
}

size_t IncompleteUtf8Suffix(absl::string_view s) {
  // A character has at most 4 bytes: look back at most 3 for its lead byte.
  const auto* bytes = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t c = bytes[n - back];
    if (c >= 0x80 && c <= 0xBF) continue;  // continuation byte, keep looking
    size_t len = 0;
    const Utf8Scan scan = ScanUtf8(bytes + n - back, back, &len);
    return (scan == Utf8Scan::kTruncated && len == back) ? back : 0;
  }
  return 0;
}

}  // namespace lumen
