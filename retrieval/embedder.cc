#include "retrieval/embedder.h"

#include "absl/strings/str_cat.h"

namespace lumen::retrieval {

std::string EmbeddingModelInfo::Describe() const {
  return absl::StrCat("'", name, "' (dim ", dim,
                      checksum.empty() ? "" : ", checksum ",
                      checksum.substr(0, 16), ")");
}

}  // namespace lumen::retrieval
