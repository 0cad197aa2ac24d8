#include "engine/constrained/constraint_trigger.h"

#include <utility>

namespace lumen::engine::constrained {

ConstraintTrigger::ConstraintTrigger(std::string trigger)
    : trigger_(std::move(trigger)) {
  window_.reserve(2 * trigger_.size() + 64);
}

std::optional<absl::string_view> ConstraintTrigger::Push(
    absl::string_view token_bytes) {
  // Bytes that cannot start the trigger any more are dropped first, so the
  // search only spans what could hold it.
  if (window_.size() >= trigger_.size()) {
    window_.erase(0, window_.size() - (trigger_.size() - 1));
  }
  window_.append(token_bytes.data(), token_bytes.size());
  const size_t at = window_.find(trigger_);
  if (at == std::string::npos) return std::nullopt;
  return absl::string_view(window_).substr(at);
}

}  // namespace lumen::engine::constrained
