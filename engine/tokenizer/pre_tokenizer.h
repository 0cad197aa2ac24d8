#pragma once
// PreTokenizer splits text into words before byte-level BPE, with the regex
// list that llama.cpp selects for the vocabulary's `tokenizer.ggml.pre`. Each
// regex splits every piece of the previous one into matches and the runs
// between them.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer/regex.h"

namespace lumen::engine {

class PreTokenizer {
 public:
  // InvalidArgument for a pre-tokenizer name this build does not know.
  static absl::StatusOr<PreTokenizer> ForName(absl::string_view pre);
  // The names ForName accepts.
  static std::vector<std::string> KnownNames();

  // Appends the words of `text` (valid or invalid UTF-8) to `words`.
  void Split(absl::string_view text, std::vector<std::string>* words) const;

 private:
  std::vector<Regex> regexes_;
};

}  // namespace lumen::engine
