#pragma once
// GBNF for the decimal integers of a range (JSON Schema's minimum/maximum on
// integers): digit-by-digit alternatives, no leading zeros, "-" only before
// a non-zero magnitude. Pure; any thread.

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

}  // namespace lumen::engine::constrained
