#pragma once
// Regular expression -> GBNF. The usual subset: literals, escapes (\d \w \s
// and their negations, \t \n \r \f \v \0 \xHH \uHHHH, escaped
// punctuation), classes with ranges and negation, `.` (any character but
// \n), groups ((...), (?:...), (?<name>...), (?P<name>...)), alternation,
// and the quantifiers * + ? {m} {m,} {m,n} (lazy forms match the same
// strings). The whole output must match: a leading ^ and a trailing $ are
// accepted and implied. Backreferences, lookaround, word boundaries, other
// anchors, flags and Unicode properties are refused. Pure; any thread.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumen::engine::constrained {

enum class RegexTarget {
  kText,               // the output text itself
  kJsonStringContent,  // the inside of a JSON string: matched characters are
                       // written JSON-escaped where JSON requires it
};

// A GBNF expression (no rule name) matching exactly what the regex fully
// matches. InvalidArgument "regex column C: <what> is not supported" (or
// another description of the problem).
absl::StatusOr<std::string> RegexToGbnf(absl::string_view regex,
                                        RegexTarget target);

}  // namespace lumen::engine::constrained
