#pragma once
// Random-weight GGUF models of a given shape (normal, std 0.02; norm weights
// 1; qwen2 biases random) with the vocabulary of another GGUF. The files load
// in llama.cpp too, so Lumen and llama.cpp are benchmarked on the same bytes.

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace lumen::tools {

struct SynthOptions {
  std::string arch = "llama";  // llama, qwen2 or bert (embedding model)
  int64_t dim = 768, layers = 12, heads = 12, kv_heads = 12, ffn = 2048;
  int64_t ctx = 1024, seed = 1;
  std::string vocab_from;        // GGUF whose tokenizer.* metadata is copied
  std::string type = "f32";      // matrices: f32, f16 or q8_0
  bool untied = false;           // write a separate output.weight
  std::string pooling = "mean";  // bert: mean or cls
};

// Writes the model to `out_path`. InvalidArgument names a bad option.
absl::Status Synthesize(const SynthOptions& options,
                        const std::string& out_path);

}  // namespace lumen::tools
