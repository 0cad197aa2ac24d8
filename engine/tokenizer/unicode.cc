#include "engine/tokenizer/unicode.h"

#include <algorithm>
#include <array>

#include "engine/tokenizer/unicode_data.h"

namespace lumen::engine {

namespace ud = unicode_data;

uint8_t CodepointCategory(uint32_t cp) {
  const ud::CategoryRange* begin = ud::kCategoryRanges;
  const ud::CategoryRange* end = begin + ud::kNumCategoryRanges;
  auto it = std::upper_bound(
      begin, end, cp,
      [](uint32_t v, const ud::CategoryRange& r) { return v < r.first; });
  return it == begin ? 0 : (it - 1)->flags;
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

namespace {
uint32_t LookupPair(const ud::CodepointPair* table, size_t n, uint32_t cp) {
  const ud::CodepointPair* end = table + n;
  auto it = std::lower_bound(
      table, end, cp,
      [](const ud::CodepointPair& p, uint32_t v) { return p.from < v; });
  return (it != end && it->from == cp) ? it->to : cp;
}
}  // namespace

uint32_t NfdFirst(uint32_t cp) {
  if (cp < 0xC0) return cp;
  return LookupPair(ud::kNfdFirst, ud::kNumNfdFirst, cp);
}

uint32_t ToLower(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  return LookupPair(ud::kLowercase, ud::kNumLowercase, cp);
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

size_t IncompleteUtf8Suffix(absl::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence is cut short.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte, keep looking
    const int len = Utf8SequenceLength(c);
    return (len > 1 && static_cast<size_t>(len) > back) ? back : 0;
  }
  return 0;
}

namespace {
struct ByteTables {
  std::array<uint32_t, 256> byte_to_cp;
  std::array<int, 256 + 68> cp_to_byte;  // the table's code points are < 324
  ByteTables() {
    cp_to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      byte_to_cp[b] = printable ? b : 256 + n++;
      cp_to_byte[byte_to_cp[b]] = b;
    }
  }
};
const ByteTables& Tables() {
  static const ByteTables* tables = new ByteTables();
  return *tables;
}
}  // namespace

uint32_t ByteToUnicode(uint8_t byte) { return Tables().byte_to_cp[byte]; }

int UnicodeToByte(uint32_t cp) {
  return cp < Tables().cp_to_byte.size() ? Tables().cp_to_byte[cp] : -1;
}

}  // namespace lumen::engine
