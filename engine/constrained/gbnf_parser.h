#pragma once
// GBNF parser: llama.cpp's grammar format (rules `name ::= ...`, `|`,
// grouping, `*` `+` `?` `{m}` `{m,}` `{m,n}`, string literals, character
// classes with ranges and `^`, escapes \xHH \uHHHH \UHHHHHHHH \t \n \r,
// `.`, `#` comments), so grammars written for llama.cpp work unchanged. The
// start rule is `root`. Escapes and class members are code points; the
// result matches their UTF-8 bytes. Pure function; any thread.

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/constrained/grammar.h"

namespace lumen::engine::constrained {

// InvalidArgument "grammar line L, column C: <problem>" for syntax errors and
// undefined rules, "grammar: <problem>" for a missing root, left recursion
// or a rule that can never complete.
absl::StatusOr<Grammar> ParseGbnf(absl::string_view text);

// Repetition counts above this are refused ({m,n} expands into n copies).
inline constexpr int kMaxRepetition = 10000;

}  // namespace lumen::engine::constrained
