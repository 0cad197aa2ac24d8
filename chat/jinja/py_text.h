#pragma once
// Python's text semantics, as jinja2 templates see them: strings are
// sequences of code points (len, slicing, strip, split, case), and numbers
// print as Python prints them. All functions are pure and thread-safe.
//
// Strings are UTF-8 byte strings. Bytes that are not valid UTF-8 (a template
// literal may contain any byte) count as one code point each, so no input
// makes these functions fail.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumen::chat::jinja {

// Decodes the code point at `*pos` and advances `*pos` past it. An invalid
// byte decodes as U+FFFD and advances by one.
char32_t DecodeUtf8(absl::string_view s, size_t* pos);
void AppendUtf8(char32_t code_point, std::string* out);

// Number of code points (Python's len()).
int64_t CodePointCount(absl::string_view s);
// Byte offset of each code point and of the end: [CodePointCount(s) + 1].
std::vector<size_t> CodePointOffsets(absl::string_view s);

// Python's str.isspace() for one code point.
bool IsPyWhitespace(char32_t c);

// str.strip/lstrip/rstrip: without `chars` strips Python whitespace,
// otherwise any code point in `chars`.
absl::string_view PyStrip(absl::string_view s,
                          std::optional<absl::string_view> chars, bool left,
                          bool right);

// str.split(sep, maxsplit): without `sep` splits on runs of whitespace and
// drops empty parts. An empty `sep` is the caller's error to report.
std::vector<absl::string_view> PySplit(absl::string_view s,
                                       std::optional<absl::string_view> sep,
                                       int64_t maxsplit);

// str.replace(old, new, count); count < 0 replaces all. An empty `old`
// inserts `new` around every code point, as Python does.
std::string PyReplace(absl::string_view s, absl::string_view old_text,
                      absl::string_view new_text, int64_t count);

// Byte offset of `needle` in `haystack` at or after `from`, or npos. Linear
// time on any input (no quadratic worst case on untrusted text).
size_t FindBytes(absl::string_view haystack, absl::string_view needle,
                 size_t from = 0);

// str.upper(), str.lower(), str.capitalize(), str.title(): simple (one to
// one) Unicode case mappings; ASCII is exact.
std::string PyUpper(absl::string_view s);
std::string PyLower(absl::string_view s);
std::string PyCapitalize(absl::string_view s);
std::string PyTitle(absl::string_view s);
// jinja2's `title` filter, which differs from str.title(): words start after
// whitespace, '-', and opening brackets only ("it's" -> "It's").
std::string JinjaTitle(absl::string_view s);

// repr(float): shortest round-trip digits, "1e+16" from 1e16 up and below
// 1e-4, ".0" on integral values, "inf"/"-inf"/"nan".
std::string PyFloatRepr(double v);
// repr(str): single quotes unless the text has ' and no ", escapes for
// backslash, the quote and non-printable characters.
std::string PyStrRepr(absl::string_view s);

}  // namespace lumen::chat::jinja
