#include "engine/constrained/utf8_ranges.h"

#include <algorithm>

namespace lumen::engine::constrained {

namespace {

constexpr uint32_t kSurrogateLo = 0xD800;
constexpr uint32_t kSurrogateHi = 0xDFFF;

int EncodedLength(uint32_t cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

void Encode(uint32_t cp, uint8_t out[4]) {
  switch (EncodedLength(cp)) {
    case 1:
      out[0] = static_cast<uint8_t>(cp);
      break;
    case 2:
      out[0] = static_cast<uint8_t>(0xC0 | (cp >> 6));
      out[1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      break;
    case 3:
      out[0] = static_cast<uint8_t>(0xE0 | (cp >> 12));
      out[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
      out[2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      break;
    default:
      out[0] = static_cast<uint8_t>(0xF0 | (cp >> 18));
      out[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
      out[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
      out[3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      break;
  }
}

// Splits [lo, hi] until every piece encodes as a product of byte ranges:
// same length, and for each continuation byte either the whole 0x80..0xBF
// span or a fixed prefix above it. This is the usual construction (as in
// RE2 and Rust's regex-syntax).
void Split(uint32_t lo, uint32_t hi, std::vector<Utf8Sequence>* out) {
  static constexpr uint32_t kLengthEnds[] = {0x7F, 0x7FF, 0xFFFF};
  for (uint32_t end : kLengthEnds) {
    if (lo <= end && hi > end) {
      Split(lo, end, out);
      Split(end + 1, hi, out);
      return;
    }
  }
  const int n = EncodedLength(lo);
  for (int i = 1; i < n; ++i) {
    const uint32_t mask = (1u << (6 * i)) - 1;
    if ((lo & ~mask) != (hi & ~mask)) {
      if ((lo & mask) != 0) {
        Split(lo, lo | mask, out);
        Split((lo | mask) + 1, hi, out);
        return;
      }
      if ((hi & mask) != mask) {
        Split(lo, (hi & ~mask) - 1, out);
        Split(hi & ~mask, hi, out);
        return;
      }
    }
  }
  Utf8Sequence seq;
  seq.length = n;
  Encode(lo, seq.lo);
  Encode(hi, seq.hi);
  out->push_back(seq);
}

}  // namespace

void Normalize(CodepointRanges* ranges) {
  std::sort(ranges->begin(), ranges->end());
  CodepointRanges merged;
  for (const auto& r : *ranges) {
    if (!merged.empty() && r.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  *ranges = std::move(merged);
}

void RemoveSurrogates(CodepointRanges* ranges) {
  CodepointRanges out;
  for (const auto& [lo, hi] : *ranges) {
    if (hi < kSurrogateLo || lo > kSurrogateHi) {
      out.push_back({lo, hi});
      continue;
    }
    if (lo < kSurrogateLo) out.push_back({lo, kSurrogateLo - 1});
    if (hi > kSurrogateHi) out.push_back({kSurrogateHi + 1, hi});
  }
  *ranges = std::move(out);
}

CodepointRanges Complement(const CodepointRanges& ranges) {
  CodepointRanges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : ranges) {
    if (lo > next) out.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= kMaxCodepoint) out.push_back({next, kMaxCodepoint});
  RemoveSurrogates(&out);
  return out;
}

std::vector<Utf8Sequence> ToUtf8Sequences(const CodepointRanges& ranges) {
  std::vector<Utf8Sequence> out;
  for (const auto& [lo, hi] : ranges) Split(lo, hi, &out);
  std::stable_sort(out.begin(), out.end(),
                   [](const Utf8Sequence& a, const Utf8Sequence& b) {
                     return a.length < b.length;
                   });
  return out;
}

void AppendUtf8Codepoint(uint32_t cp, std::string* out) {
  uint8_t bytes[4];
  Encode(cp, bytes);
  out->append(reinterpret_cast<const char*>(bytes), EncodedLength(cp));
}

bool DecodeUtf8Codepoint(absl::string_view text, size_t* pos, uint32_t* cp) {
  const size_t i = *pos;
  if (i >= text.size()) return false;
  const uint8_t lead = static_cast<uint8_t>(text[i]);
  int n = 0;
  uint32_t value = 0;
  if (lead < 0x80) {
    n = 1;
    value = lead;
  } else if ((lead & 0xE0) == 0xC0) {
    n = 2;
    value = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    n = 3;
    value = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    n = 4;
    value = lead & 0x07;
  } else {
    return false;
  }
  if (i + n > text.size()) return false;
  for (int k = 1; k < n; ++k) {
    const uint8_t b = static_cast<uint8_t>(text[i + k]);
    if ((b & 0xC0) != 0x80) return false;
    value = (value << 6) | (b & 0x3F);
  }
  if (EncodedLength(value) != n || value > kMaxCodepoint ||
      (value >= kSurrogateLo && value <= kSurrogateHi)) {
    return false;
  }
  *cp = value;
  *pos = i + n;
  return true;
}

}  // namespace lumen::engine::constrained
