#include "engine/tokenizer/unicode_maps.h"

#include <algorithm>
#include <array>
#include <cstddef>

#include "engine/tokenizer/unicode_data.h"

namespace lumen::engine {

namespace ud = unicode_data;

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
