#pragma once
// ModelFamily: what sets one decoder architecture (GGUF
// general.architecture) apart from the others. A family is data: the RoPE
// pairing, its layer written out as a short list of named steps (BlockStep),
// and a function reading its own hyper-parameters. The Transformer loads the
// tensors the steps need and runs the steps in order, so a reader finds one
// family's layer in one place (engine/model/families/<family>.cc), and a new
// family is one new file plus one line in model_family.cc. Immutable,
// shared; any thread.

#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/cpu_ops.h"

namespace lumen::engine {

struct ModelConfig;

// One step of a transformer layer over the step's T tokens. The residual
// stream x [T, n_embd] runs through the layer; a sublayer reads a normalized
// copy xn, writes its result to `out` [T, n_embd], and kAddToResidual adds
// `out` back to x.
enum class BlockStep {
  kAttentionNorm,      // xn = RmsNorm(x) * attn_norm
  kQkvProjection,      // q, k, v = W xn (+ bias): attn_q/k/v or fused attn_qkv
  kQkNorm,             // every head of q and k: RmsNorm(head) * attn_{q,k}_norm
  kRope,               // rotate q and k by position (the layer's RoPE)
  kAttention,          // k, v into the KV cache; a = softmax(q.k * scale) v,
                       // causal, within the window on sliding-window layers
  kOutputProjection,   // out = attn_output a
  kPostAttentionNorm,  // out = RmsNorm(out) * post_attention_norm
  kFfnNorm,            // xn = RmsNorm(x) * ffn_norm
  kSwiGlu,             // out = ffn_down(silu(ffn_gate xn) * ffn_up xn); the
                       // routed experts instead in mixture-of-experts models
  kGeGlu,              // out = ffn_down(gelu_tanh(ffn_gate xn) * ffn_up xn)
  kPostFfnNorm,        // out = RmsNorm(out) * post_ffw_norm
  kAddToResidual,      // x += out
};

// A short name for listings ("qk_norm", "+residual", ...).
absl::string_view BlockStepName(BlockStep step);

struct ModelFamily {
  absl::string_view arch;  // general.architecture
  // How RoPE pairs a head's dimensions (llama.cpp's rope type per arch).
  kernels::RopeStyle rope_style;
  std::span<const BlockStep> block;  // one layer, in order
  // Reads the family's own hyper-parameters into `c` after the common ones
  // (sliding windows, embedding and attention scales, expert gating).
  // InvalidArgument naming the key on bad values.
  absl::Status (*configure)(const GgufFile& f, ModelConfig* c);
};

// The family of an architecture name; nullptr when Lumen has none.
const ModelFamily* FindModelFamily(absl::string_view arch);
// "llama, qwen2, ..." for error messages.
std::string SupportedArchitectures();
// "attn_norm > qkv > rope > ..." for listings.
std::string BlockSummary(const ModelFamily& family);

}  // namespace lumen::engine
