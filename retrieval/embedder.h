#pragma once
// Embedder: turns passages into sentence embeddings (implemented by the
// embedding model's worker, server/embedding_worker.h, and by test fakes).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumen::retrieval {

// What identifies an embedding model: vectors from two models with different
// identities are not comparable. Recorded per collection.
struct EmbeddingModelInfo {
  std::string name;      // e.g. the GGUF's general.name or file name
  int dim = 0;           // embedding dimension
  std::string checksum;  // of the weights (hex); empty when unknown

  bool operator==(const EmbeddingModelInfo&) const = default;
  // "name (dim 384, checksum 1a2b3c4d)" for error messages.
  std::string Describe() const;
};

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual int dim() const = 0;
  // The model's identity; by default an unnamed model of dim() dimensions.
  virtual EmbeddingModelInfo model() const { return {"unnamed", dim(), ""}; }
  // [texts.size()][dim], L2-normalized. Thread-safe; may block while the
  // model works (callers hold no locks).
  virtual absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) = 0;
  // Tokens the model sees for `text` (chunk budgets). Thread-safe.
  virtual int CountTokens(absl::string_view text) const = 0;
};

}  // namespace lumen::retrieval
