#include "engine/constrained/numeric_range_gbnf.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lumen::engine::constrained {

namespace {

std::string DigitClass(char lo, char hi) {
  if (lo == hi) return absl::StrCat("\"", std::string(1, lo), "\"");
  return absl::StrCat("[", std::string(1, lo), "-", std::string(1, hi), "]");
}

std::string AnyDigits(int n) {
  if (n == 0) return "";
  if (n == 1) return "[0-9]";
  return absl::StrCat("[0-9]{", n, "}");
}

std::string Seq(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return absl::StrCat(a, " ", b);
}

std::string Group(const std::vector<std::string>& alternatives) {
  if (alternatives.size() == 1) return alternatives[0];
  return absl::StrCat("(", absl::StrJoin(alternatives, " | "), ")");
}

// Digit strings of x.size() digits from x to y (same length, x <= y);
// leading zeros are the caller's business.
void SameLength(const std::string& x, const std::string& y,
                std::vector<std::string>* out) {
  if (x.empty()) {
    out->push_back("");
    return;
  }
  if (x[0] == y[0]) {
    std::vector<std::string> rest;
    SameLength(x.substr(1), y.substr(1), &rest);
    out->push_back(Seq(DigitClass(x[0], x[0]), Group(rest)));
    return;
  }
  const size_t n = x.size() - 1;
  const std::string tail_x = x.substr(1), tail_y = y.substr(1);
  char low = x[0], high = y[0];
  if (tail_x.find_first_not_of('0') != std::string::npos) {
    std::vector<std::string> rest;
    SameLength(tail_x, std::string(n, '9'), &rest);
    out->push_back(Seq(DigitClass(x[0], x[0]), Group(rest)));
    ++low;
  }
  std::string top;
  if (tail_y.find_first_not_of('9') != std::string::npos) {
    std::vector<std::string> rest;
    SameLength(std::string(n, '0'), tail_y, &rest);
    top = Seq(DigitClass(y[0], y[0]), Group(rest));
    --high;
  }
  if (low <= high) out->push_back(Seq(DigitClass(low, high), AnyDigits(n)));
  if (!top.empty()) out->push_back(top);
}

uint64_t Pow10(int n) {
  uint64_t p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

// Magnitudes in [lo, hi] (hi empty: unbounded) written without leading
// zeros.
void NonNegative(uint64_t lo, std::optional<uint64_t> hi,
                 std::vector<std::string>* out) {
  const int lo_digits = static_cast<int>(absl::StrCat(lo).size());
  const int max_digits = hi ? static_cast<int>(absl::StrCat(*hi).size())
                            : std::max(kUnboundedIntegerDigits, lo_digits);
  for (int len = lo_digits; len <= max_digits; ++len) {
    const uint64_t from = len == lo_digits ? lo : Pow10(len - 1);
    if (!hi && len > lo_digits) {
      // Every number of these lengths: one alternative for all of them.
      const int extra = max_digits - len;
      out->push_back(Seq("[1-9]", extra == 0
                                      ? AnyDigits(len - 1)
                                      : absl::StrCat("[0-9]{", len - 1, ",",
                                                     len - 1 + extra, "}")));
      return;
    }
    const uint64_t to = (hi && len == max_digits) ? *hi : Pow10(len) - 1;
    SameLength(absl::StrCat(from), absl::StrCat(to), out);
  }
}

}  // namespace

std::string IntegerRangeGbnf(std::optional<int64_t> min,
                             std::optional<int64_t> max) {
  std::vector<std::string> alternatives;
  // Negative numbers: magnitudes in [max(1, -max), -min].
  if (!min || *min < 0) {
    const uint64_t mag_lo =
        (max && *max < 0) ? static_cast<uint64_t>(-*max) : 1;
    std::optional<uint64_t> mag_hi;
    if (min) mag_hi = static_cast<uint64_t>(-*min);
    std::vector<std::string> mags;
    NonNegative(mag_lo, mag_hi, &mags);
    alternatives.push_back(Seq("\"-\"", Group(mags)));
  }
  if (!max || *max >= 0) {
    const uint64_t lo = (min && *min > 0) ? static_cast<uint64_t>(*min) : 0;
    std::optional<uint64_t> hi;
    if (max) hi = static_cast<uint64_t>(*max);
    NonNegative(lo, hi, &alternatives);
  }
  return Group(alternatives);
}

std::string NumberRangeGbnf(std::optional<int64_t> min,
                            std::optional<int64_t> max) {
  const std::string any_fraction = R"(( "." [0-9]{1,16} )?)";
  const std::string zero_fraction = R"(( "." "0"{1,16} )?)";
  // Magnitudes m with m_lo <= m <= m_hi (m_hi empty: unbounded).
  auto magnitudes = [&](int64_t m_lo, std::optional<int64_t> m_hi) {
    std::vector<std::string> alternatives;
    if (!m_hi) {
      alternatives.push_back(absl::StrCat(IntegerRangeGbnf(m_lo, std::nullopt),
                                          " ", any_fraction));
    } else {
      if (*m_hi - 1 >= m_lo) {
        alternatives.push_back(
            absl::StrCat(IntegerRangeGbnf(m_lo, *m_hi - 1), " ", any_fraction));
      }
      alternatives.push_back(
          absl::StrCat(IntegerRangeGbnf(*m_hi, *m_hi), " ", zero_fraction));
    }
    return alternatives;
  };
  std::vector<std::string> alternatives;
  if (!max || *max >= 0) {
    auto a = magnitudes(min ? std::max<int64_t>(*min, 0) : 0, max);
    alternatives.insert(alternatives.end(), a.begin(), a.end());
  }
  if (!min || *min < 0) {
    std::optional<int64_t> m_hi;
    if (min) m_hi = -*min;
    auto a = magnitudes(max && *max < 0 ? -*max : 0, m_hi);
    alternatives.push_back(
        absl::StrCat(R"("-" ( )", absl::StrJoin(a, " | "), " )"));
  }
  return absl::StrCat("( ", absl::StrJoin(alternatives, " | "), " )");
}

}  // namespace lumen::engine::constrained
