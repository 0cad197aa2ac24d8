#pragma once
// ConstraintTrigger: where a lazy constraint takes over. A request whose
// output is free until the model writes a trigger text (a tool call's
// opening markup in tool_choice "auto", as llama.cpp's lazy grammars do)
// pushes each sampled token's bytes here; once the trigger has appeared,
// the constraint must match the output from the trigger's first byte on.
//
// Keeps only the last trigger-length bytes of the output, so a trigger split
// across tokens is found; no allocation per token once the window has grown
// to the longest token seen.

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace lumen::engine::constrained {

class ConstraintTrigger {
 public:
  // `trigger` is not empty.
  explicit ConstraintTrigger(std::string trigger);

  // Appends the bytes of one sampled token. Once the output holds the
  // trigger, returns the output from the trigger's first byte to the end of
  // this token (valid until the next call); nullopt until then.
  std::optional<absl::string_view> Push(absl::string_view token_bytes);

  const std::string& trigger() const { return trigger_; }

 private:
  std::string trigger_;
  std::string window_;  // the output's last bytes
};

}  // namespace lumen::engine::constrained
