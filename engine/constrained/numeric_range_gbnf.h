#pragma once
// GBNF for the numbers of a range (JSON Schema's minimum/maximum):
// digit-by-digit alternatives, no leading zeros, "-" only before a non-zero
// magnitude (integers). Pure; any thread.

#include <cstdint>
#include <optional>
#include <string>

namespace lumen::engine::constrained {

// Bounds beyond this magnitude are refused by the JSON Schema translator.
inline constexpr int64_t kMaxIntegerBound = 1000000000000000000;  // 1e18
// An unbounded side allows numbers of up to this many digits (or the
// bound's own digit count if that is larger).
inline constexpr int kUnboundedIntegerDigits = 16;

// A GBNF expression matching exactly the integers in [min, max] (either
// side may be open). Requires min <= max and |bounds| <= kMaxIntegerBound.
std::string IntegerRangeGbnf(std::optional<int64_t> min,
                             std::optional<int64_t> max);

// A GBNF expression for decimal numbers without exponent (up to 16 fraction
// digits) in [min, max], both whole numbers (either side may be open): the
// integer part decides, and the upper bound itself takes only a zero
// fraction. Requires min <= max and |bounds| <= kMaxIntegerBound.
std::string NumberRangeGbnf(std::optional<int64_t> min,
                            std::optional<int64_t> max);

}  // namespace lumen::engine::constrained
