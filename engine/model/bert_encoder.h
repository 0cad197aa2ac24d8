#pragma once
// BertEncoder: sentence embeddings from GGUF `bert` models (BERT, MiniLM,
// BGE): token + position + token-type embeddings, post-LayerNorm encoder
// blocks with GELU feed-forward, mean or CLS pooling (pooling_type metadata),
// L2-normalized.
//
// Many sequences run in one pass, as a ragged batch like the engine's: their
// tokens are concatenated, so every matrix of every layer is one GEMM over
// all of them (Linear kernels), and only attention is per sequence (threaded
// over sequences x heads, register-blocked QK^T and PV). GELU, softmax and
// LayerNorm are vectorized and threaded over rows.
//
// Threads: the weights are read-only once loaded, so several threads may
// encode at once, each with its own Workspace (its scratch, sized for the
// calling thread's OpenMP team). Embed(sequences) without a workspace uses
// the encoder's own: one thread at a time.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/linear.h"

namespace lumen::engine {

class BertEncoder {
 public:
  // Scratch of one encoding thread, grown on demand (T = a pass's tokens).
  struct Workspace {
    int64_t tokens = 0;      // rows reserved
    std::vector<float> x;    // [T, dim]
    std::vector<float> qkv;  // [T, 3 * dim]
    std::vector<float> att;  // [T, dim]
    std::vector<float> tmp;  // [T, dim]
    std::vector<float> ff;   // [T, n_ff]
    // Per OpenMP thread: Q [n_ctx, hd], K^T [hd, n_ctx], V [n_ctx, hd] of
    // one head and its scores [n_ctx, n_ctx].
    std::vector<float> heads;
    kernels::LinearScratch linear;
  };

  // InvalidArgument for a non-bert file, missing tensors or bad shapes.
  static absl::StatusOr<std::unique_ptr<BertEncoder>> Load(
      const GgufFile& file);

  int dim() const { return static_cast<int>(dim_); }
  int max_tokens() const { return static_cast<int>(n_ctx_); }
  bool mean_pooling() const { return mean_pooling_; }

  // One embedding per sequence ([dim], unit length). Sequences longer than
  // max_tokens() are truncated. InvalidArgument for an empty sequence or a
  // token outside the vocabulary.
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::vector<int32_t>>& sequences,
      Workspace* workspace) const;
  // The same with the encoder's own workspace (one thread at a time).
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::vector<int32_t>>& sequences) {
    return Embed(sequences, &workspace_);
  }

  // Tokens per pass (a longer sequence runs alone). Default 4096: large
  // enough for GEMMs near peak, small enough for the scratch (~65 MB per
  // workspace for a 384-dim model). Not while encoding.
  void set_max_pass_tokens(int64_t tokens) { max_pass_tokens_ = tokens; }
  int64_t max_pass_tokens() const { return max_pass_tokens_; }

 private:
  struct Layer {
    std::unique_ptr<kernels::Linear> qkv, out, up, down;
    std::vector<float> attn_norm_w, attn_norm_b, out_norm_w, out_norm_b;
  };
  BertEncoder() = default;
  // Encodes sequences [first, last) in one ragged batch into out[first..).
  absl::Status EncodePass(const std::vector<std::vector<int32_t>>& sequences,
                          size_t first, size_t last, Workspace* ws,
                          std::vector<std::vector<float>>* out) const;
  // Self-attention of every sequence and head: ws->qkv -> ws->att.
  void Attention(const std::vector<int64_t>& starts, int64_t total,
                 Workspace* ws) const;
  void Reserve(int64_t tokens, Workspace* ws) const;

  int64_t dim_ = 0, n_layers_ = 0, n_heads_ = 0, n_ff_ = 0, n_ctx_ = 0,
          n_vocab_ = 0;
  float eps_ = 1e-12f;
  bool mean_pooling_ = true;
  std::vector<float> tok_emb_, pos_emb_, type_emb_, emb_norm_w_, emb_norm_b_;
  std::vector<Layer> layers_;
  int64_t max_pass_tokens_ = 4096;
  Workspace workspace_;  // for Embed(sequences)
};

}  // namespace lumen::engine
