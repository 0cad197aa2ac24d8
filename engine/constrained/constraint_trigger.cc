#include "engine/constrained/constraint_trigger.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"

namespace lumen::engine::constrained {

ConstraintTrigger::ConstraintTrigger(std::string text, bool at_start)
    : text_(std::move(text)), at_start_(at_start) {
  window_.reserve(2 * text_.size() + 64);
}

std::optional<absl::string_view> ConstraintTrigger::Push(
    absl::string_view token_bytes) {
  if (at_start_) return PushAtStart(token_bytes);
  // Bytes that cannot start the trigger any more are dropped first, so the
  // search only spans what could hold it.
  if (window_.size() >= text_.size()) {
    window_.erase(0, window_.size() - (text_.size() - 1));
  }
  window_.append(token_bytes.data(), token_bytes.size());
  const size_t at = window_.find(text_);
  if (at == std::string::npos) return std::nullopt;
  return absl::string_view(window_).substr(at);
}

std::optional<absl::string_view> ConstraintTrigger::PushAtStart(
    absl::string_view token_bytes) {
  if (dead_) {
    window_.clear();
    return std::nullopt;
  }
  // The output so far without its leading whitespace: a prefix of the
  // trigger (undecided), the trigger and more (found), or neither (dead).
  for (char c : token_bytes) {
    if (window_.empty() && absl::ascii_isspace(static_cast<unsigned char>(c)))
      continue;
    window_.push_back(c);
  }
  const size_t n = std::min(window_.size(), text_.size());
  if (window_.compare(0, n, text_, 0, n) != 0) {
    dead_ = true;
    window_.clear();
    return std::nullopt;
  }
  if (window_.size() < text_.size()) return std::nullopt;
  dead_ = true;  // the start comes once
  return absl::string_view(window_);
}

}  // namespace lumen::engine::constrained
