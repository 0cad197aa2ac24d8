#include "engine/constrained/gbnf_text.h"

#include "absl/strings/str_format.h"

namespace lumen::engine::constrained {

namespace {

// Appends `cp` as it may appear inside a literal or a class; `specials` are
// the ASCII characters that need a backslash there.
void AppendChar(uint32_t cp, absl::string_view specials, std::string* out) {
  if (cp < 0x20 || cp == 0x7F) {
    absl::StrAppendFormat(out, "\\x%02X", cp);
  } else if (cp < 0x80 &&
             specials.find(static_cast<char>(cp)) != absl::string_view::npos) {
    out->push_back('\\');
    out->push_back(static_cast<char>(cp));
  } else if (cp >= 0x80 && cp < 0xA0) {
    absl::StrAppendFormat(out, "\\u%04X", cp);  // C1 controls: keep visible
  } else {
    AppendUtf8Codepoint(cp, out);
  }
}

}  // namespace

std::string GbnfLiteral(absl::string_view text) {
  std::string out = "\"";
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp = 0;
    if (!DecodeUtf8Codepoint(text, &pos, &cp)) {
      // Not reachable for valid UTF-8; keep the byte as a code point escape
      // so the output stays parseable.
      cp = static_cast<uint8_t>(text[pos++]);
    }
    AppendChar(cp, "\"\\", &out);
  }
  return out + "\"";
}

std::string GbnfLiteral(uint32_t cp) {
  std::string out = "\"";
  AppendChar(cp, "\"\\", &out);
  return out + "\"";
}

std::string GbnfClass(const CodepointRanges& ranges, bool negated) {
  std::string out = negated ? "[^" : "[";
  for (const auto& [lo, hi] : ranges) {
    AppendChar(lo, "]\\-^[", &out);
    if (hi > lo) {
      if (hi > lo + 1) out.push_back('-');
      AppendChar(hi, "]\\-^[", &out);
    }
  }
  return out + "]";
}

}  // namespace lumen::engine::constrained
