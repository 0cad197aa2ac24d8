#pragma once
// StopMatcher finds stop strings in generated text as it streams in, across
// token boundaries. Text that might still become the start of a stop string
// is held back; a found stop string and everything after it is never
// emitted.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumen::engine {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds generated text; returns the text that is now safe to emit. Sets
  // *stopped when a stop string appeared (the return value then ends right
  // before it, and later calls return nothing).
  std::string Push(absl::string_view text, bool* stopped);
  // Releases the held-back text at the end of generation.
  std::string Flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace lumen::engine
