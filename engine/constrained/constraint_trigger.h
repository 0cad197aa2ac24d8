#pragma once
// ConstraintTrigger: where a lazy constraint takes over. A request whose
// output is free until the model writes a trigger text (a tool call's
// opening markup in tool_choice "auto", as llama.cpp's lazy grammars do)
// pushes each sampled token's bytes here; once the trigger has appeared,
// the constraint must match the output from the trigger's first byte on.
//
// A trigger may be anywhere in the output (markup such as <tool_call>) or
// only at its start, after whitespace (a bare JSON call such as {"name",
// which mid-reply is just JSON in the text). Keeps only the last
// trigger-length bytes of the output, so a trigger split across tokens is
// found; no allocation per token once the window has grown to the longest
// token seen.

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace lumen::engine::constrained {

class ConstraintTrigger {
 public:
  // `text` is not empty.
  ConstraintTrigger(std::string text, bool at_start);

  // Appends the bytes of one sampled token. When this token completes the
  // trigger, returns the output from the trigger's first byte to the end of
  // this token (valid until the next call); nullopt otherwise. A trigger
  // anywhere is looked for again in later tokens (the caller may refuse an
  // occurrence); one at the start is found at most once.
  std::optional<absl::string_view> Push(absl::string_view token_bytes);

 private:
  std::optional<absl::string_view> PushAtStart(absl::string_view token_bytes);

  const std::string text_;
  const bool at_start_;
  bool dead_ = false;   // at start: found, or something else began the output
  std::string window_;  // the output's last bytes (at start: all of it)
};

}  // namespace lumen::engine::constrained
