#pragma once
// BertEncoder: sentence embeddings from GGUF `bert` models (BERT, MiniLM,
// BGE): token + position + token-type embeddings, post-LayerNorm encoder
// blocks with GELU feed-forward, mean or CLS pooling (pooling_type metadata),
// L2-normalized. Matrices run on the engine's Linear kernels. One thread at a
// time (the embedding worker).

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/linear.h"

namespace lumen::engine {

class BertEncoder {
 public:
  // InvalidArgument for a non-bert file, missing tensors or bad shapes.
  static absl::StatusOr<std::unique_ptr<BertEncoder>> Load(
      const GgufFile& file);

  int dim() const { return static_cast<int>(dim_); }
  int max_tokens() const { return static_cast<int>(n_ctx_); }
  bool mean_pooling() const { return mean_pooling_; }

  // One embedding per sequence ([dim], unit length). Sequences longer than
  // max_tokens() are truncated.
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::vector<int32_t>>& sequences);

 private:
  struct Layer {
    std::unique_ptr<kernels::Linear> qkv, out, up, down;
    std::vector<float> attn_norm_w, attn_norm_b, out_norm_w, out_norm_b;
  };
  BertEncoder() = default;

  int64_t dim_ = 0, n_layers_ = 0, n_heads_ = 0, n_ff_ = 0, n_ctx_ = 0,
          n_vocab_ = 0;
  float eps_ = 1e-12f;
  bool mean_pooling_ = true;
  std::vector<float> tok_emb_, pos_emb_, type_emb_, emb_norm_w_, emb_norm_b_;
  std::vector<Layer> layers_;
  kernels::LinearScratch scratch_;
};

}  // namespace lumen::engine
