#pragma once
// Random-weight GGUF models of a given shape (normal, std 0.02; norm weights
// 1; qwen2 biases random) with the vocabulary of another GGUF, in every
// architecture Lumen runs, with llama.cpp's tensor names and metadata keys.
// The files load in llama.cpp too, so Lumen and llama.cpp are benchmarked on
// the same bytes.

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace lumen::tools {

struct SynthOptions {
  // llama, qwen2, mixtral (llama with MoE FFNs), qwen2moe, qwen3, qwen3moe,
  // gemma3, phi3, or bert (embedding model).
  std::string arch = "llama";
  int64_t dim = 768, layers = 12, heads = 12, kv_heads = 12, ffn = 2048;
  int64_t ctx = 1024, seed = 1;
  std::string vocab_from;  // GGUF whose tokenizer.* metadata is copied
  // A Jinja file written as tokenizer.chat_template (replacing the copied
  // one), so tests serve a synth model with a real model's template.
  std::string chat_template_file;
  std::string type = "f32";      // matrices: f32, f16 or q8_0
  bool untied = false;           // write a separate output.weight
  std::string pooling = "mean";  // bert: mean or cls
  // Mixture of experts (mixtral, qwen2moe): --ffn is each expert's width.
  int64_t experts = 8, experts_used = 2;
  int64_t shared_ffn = 0;  // qwen2moe shared expert width; 0: 4 x ffn
  // attention.key_length (q width = heads x head_dim); 0: dim / heads.
  int64_t head_dim = 0;
  int64_t sliding_window = 512;  // gemma3: attention.sliding_window
  // llama: Llama-3.1 frequency factors (rope_freqs.weight as llama.cpp's
  // converter computes them: factor 8, low 1, high 4, original context
  // 8192) and rope base 500000.
  bool llama3_rope = false;
  // phi3: LongRoPE rope_factors_long/short and rope.scaling.attn_factor
  // for --ctx over --rope-original-ctx (Phi-3's converter's formula).
  bool longrope = false;
  std::string rope_scaling;       // rope.scaling.type: "", linear or yarn
  double rope_factor = 1.0;       // rope.scaling.factor
  int64_t rope_original_ctx = 0;  // rope.scaling.original_context_length
  // Norm weights 1 + norm_jitter x N(0, 1) instead of 1 (tests: a norm
  // applied twice or not at all then changes the output).
  double norm_jitter = 0.0;
  double weight_std = 0.02;  // standard deviation of the matrices
};

struct SynthLoraOptions {
  std::string base;  // the base model GGUF the adapter fits
  int64_t rank = 8;
  double alpha = 16;
  std::string targets = "q,k,v,o,gate,up,down";
  int64_t seed = 1;
};

// Writes the model to `out_path`. InvalidArgument names a bad option;
// NotFound an unreadable --vocab-from or --chat-template-file.
absl::Status Synthesize(const SynthOptions& options,
                        const std::string& out_path);

// Writes a LoRA adapter for `options.base` in llama.cpp's GGUF format with
// random A (std 1/sqrt(in)) and B (std 0.02, never zero), so the adapter
// visibly changes the output.
absl::Status SynthesizeLora(const SynthLoraOptions& options,
                            const std::string& out_path);

}  // namespace lumen::tools
