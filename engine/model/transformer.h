#pragma once
// Transformer: a decoder of any family in model_family.h (llama, qwen2/3 and
// their MoE variants, gemma3, phi3) loaded from GGUF and run over ragged
// batches (see batch.h). Forward embeds the tokens, runs each layer as its
// family's list of steps (engine/model/families/), and computes the logits
// of the sampled rows. Engine thread only: Forward uses buffers sized at
// load and allocates nothing.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/page_array.h"
#include "engine/batch.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/linear.h"
#include "engine/kernels/paged_attention.h"
#include "engine/kv_cache.h"
#include "engine/model/layer_weights.h"
#include "engine/model/lora_adapter.h"
#include "engine/model/model_config.h"
#include "engine/model/model_family.h"
#include "engine/model/moe_ffn.h"
#include "engine/model/rope_frequencies.h"
#include "engine/model/weight_loader.h"

namespace lumen::engine {

struct TransformerOptions {
  WeightMode weights = WeightMode::kAuto;
  int64_t max_batch_tokens = 512;  // tokens per Forward call
  // Positions per sequence (the serving context, lumend's --ctx-size); 0:
  // the model's training context. Also chooses Phi-3's LongRoPE factors,
  // as llama.cpp does: the long ones when this, rounded up to a multiple
  // of 256, exceeds rope.scaling.original_context_length.
  int64_t max_context = 0;
  bool measure_crossover = true;  // time small-M vs oneDNN per shape at load
  // With measure_crossover: a file of crossovers measured before on this
  // machine (kernels::KernelChoiceCache), read and then updated, so that
  // only shapes it lacks are timed; empty: time every shape.
  std::string kernel_choice_file;
  // Rows the output head computes per Forward at most (the sequences a step
  // samples: lumend's --max-running); 0: max_batch_tokens. The head's
  // kernel choice is measured only up to it.
  int64_t max_logit_rows = 0;
  // OpenMP threads that may run Forward's kernels (scratch is sized for
  // them); 0: omp_get_max_threads() of the loading thread.
  int32_t num_threads = 0;
};

// Bytes held in memory after loading, per component.
struct ResidentBytes {
  int64_t embedding = 0;
  int64_t attention = 0;
  int64_t ffn = 0;
  int64_t norms = 0;
  int64_t output = 0;
  int64_t total() const { return embedding + attention + ffn + norms + output; }
};

// Seconds spent per phase of Forward, accumulated until Reset.
struct ForwardProfile {
  double matmul = 0;     // every Linear (qkv, wo, gate_up, down, head)
  double attention = 0;  // KV writes and paged attention
  double other = 0;      // embedding, norms, RoPE, SwiGLU, residual adds
  int64_t steps = 0;
  void Reset() { *this = ForwardProfile(); }
};

class Transformer {
 public:
  // InvalidArgument for unsupported architectures (naming the supported
  // ones), missing tensors or wrong shapes; Unimplemented for tensor types
  // other than F32/F16/BF16/Q8_0 (naming the tensor and its type).
  static absl::StatusOr<std::unique_ptr<Transformer>> Load(
      const GgufFile& file, const TransformerOptions& options);

  // Runs one step: writes K/V of every batch token into `cache` at its
  // position's slot and the logits of each sequence with want_logits into
  // `logits` ([num_logit_rows, n_vocab], in sequence order).
  // InvalidArgument for a batch that does not fit the model or `logits`.
  absl::Status Forward(const Batch& batch, KvCache* cache,
                       std::span<float> logits);

  const ModelConfig& config() const { return config_; }
  const ModelFamily& family() const { return *config_.family; }
  // The RoPE in use, e.g. "neox, base 10000, longrope long factors (context
  // 512 > 256), attn factor 1.06".
  const std::string& rope_summary() const { return rope_summary_; }
  const ResidentBytes& resident_bytes() const { return resident_; }
  // Seconds Load spent timing the small-M kernel against oneDNN per shape
  // (TransformerOptions::measure_crossover), part of its whole time.
  double kernel_choice_seconds() const { return kernel_choice_seconds_; }
  // How the kernel choice was made: "timed 5 shapes in 0.91 s; saved to
  // F", "from F", "nothing to time (packed weights)", each followed by
  // "; not saved: <why>" when the file could not be read or written.
  const std::string& kernel_choice_source() const {
    return kernel_choice_source_;
  }
  ForwardProfile& profile() { return profile_; }
  // Whether any matrix is held quantized (int8 or packed GGUF blocks).
  bool int8() const { return int8_; }
  // The matrices' formats, e.g. "q4_K+q6_K 48, q6_K 25" or "f32 85":
  // format (parts joined by +) and count of Linear layers, head included.
  std::string WeightsSummary() const;
  int64_t max_batch_tokens() const { return options_.max_batch_tokens; }
  int64_t max_context() const { return options_.max_context; }
  int32_t num_threads() const { return options_.num_threads; }
  // Bytes of weights one token reads (all matrices + the output head; for
  // MoE, the router and its top-k experts).
  int64_t weight_bytes_per_step() const;
  // Multiply-adds per token in the matrices (2x this = FLOPs per token;
  // MoE: active experts only).
  int64_t matmul_macs_per_token() const;
  // Of those, the output head's (prefill computes it for sampled rows only).
  int64_t head_macs_per_token() const {
    return output_->rows() * output_->cols();
  }
  // Tokens routed to each expert since load, [layer][expert] flattened;
  // empty for dense models. Any thread.
  void ExpertTokenCounts(std::vector<int64_t>* counts) const;
  // The measured kernel choice per M of the first layer's matrices.
  std::string KernelChoiceSummary() const;

 private:
  // Consecutive batch rows that use one adapter.
  struct LoraRun {
    int64_t first_row;
    int64_t rows;
    const LoraAdapter* adapter;
  };

  Transformer() = default;
  absl::Status LoadRope(const GgufFile& f);
  absl::Status AllocateBuffers();
  // One kernel at every M for the other matrices when the model has packed
  // ones (batch invariance).
  void PinKernelsIfPacked();
  // Times the small-M kernel against oneDNN per fp32 shape, or reads the
  // crossovers from TransformerOptions::kernel_choice_file; sets
  // kernel_choice_seconds_ and kernel_choice_source_.
  void ChooseKernels();
  // Checks the batch against the model and the cache, and fills the step's
  // positions, attention queries, LoRA runs and logit rows.
  absl::Status PrepareStep(const Batch& batch, const KvCache& cache,
                           std::span<const float> logits);
  // x = token_embd[token] * embedding_scale for every batch token.
  void Embed(std::span<const int32_t> tokens);
  // Runs one step of layer `layer` over the step's tokens.
  absl::Status RunStep(BlockStep step, int64_t layer);
  // The steps (see BlockStep for what each computes).
  absl::Status ProjectQkv(int64_t layer);
  void NormalizeQkHeads(int64_t layer);
  void RotateQk(int64_t layer);
  void Attend(int64_t layer);
  absl::Status ProjectAttentionOutput(int64_t layer);
  absl::Status GatedFfn(int64_t layer, bool gelu);
  // Final norm and output head for the rows that want logits.
  absl::Status ComputeLogits(std::span<float> logits);
  // Adds each LoRA run's delta for (layer, target): y rows += delta(x rows).
  void ApplyLora(int64_t layer, LoraTarget target, const float* x, int64_t ldx,
                 float* y, int64_t ldy);
  // Charges the time since the last charge to one phase of the profile.
  void Charge(double* phase);
  // The RoPE table of a layer: 0 global, 1 sliding-window.
  int RopeIndex(int64_t layer) const { return config_.sliding(layer) ? 1 : 0; }

  ModelConfig config_;
  TransformerOptions options_;
  bool int8_ = false;
  // Token embeddings: one row dequantized per token. Either their own copy
  // (fp32, or the packed GGUF rows) or, for tied models whose output head
  // holds the same values, read from output_.
  struct Embeddings {
    std::vector<float> f32;          // [n_vocab, n_embd] or empty
    GgmlType type = GgmlType::kF32;  // of `packed`
    PageArray<uint8_t> packed;       // [n_vocab, row_bytes] or empty
    int64_t row_bytes = 0;
    const kernels::Linear* shared = nullptr;
    int64_t resident_bytes() const { return f32.size() * 4 + packed.size(); }
  };
  void EmbeddingRow(int32_t token, float* out) const;

  Embeddings token_embd_;
  std::vector<float> output_norm_;           // [n_embd]
  std::unique_ptr<kernels::Linear> output_;  // [n_vocab, n_embd]
  std::vector<LayerWeights> layers_;
  RopeFrequencies rope_[2];  // global layers, sliding-window layers
  std::string rope_summary_;
  ResidentBytes resident_;
  double kernel_choice_seconds_ = 0;
  std::string kernel_choice_source_ = "not measured";
  ForwardProfile profile_;

  // The step being run (set by PrepareStep).
  int64_t step_tokens_ = 0;
  int64_t step_logit_rows_ = 0;
  KvCache* step_cache_ = nullptr;
  std::chrono::steady_clock::time_point profile_mark_;

  // Step buffers, sized for max_batch_tokens at load.
  std::vector<float> x_;                          // [T, n_embd] residual stream
  std::vector<float> xn_;                         // [T, n_embd] normalized
  std::vector<float> qkv_;                        // [T, q_dim + 2 kv_dim]
  std::vector<float> attn_;                       // [T, q_dim]
  std::vector<float> proj_;                       // [T, n_embd] sublayer out
  std::vector<float> gate_up_;                    // [T, 2 n_ff]
  std::vector<float> hidden_;                     // [T, n_ff]
  std::vector<int32_t> positions_;                // [T]
  std::vector<float> rope_cos_[2], rope_sin_[2];  // [T, rope_dim / 2] each
  std::vector<kernels::AttentionQuery> queries_;  // [T]
  std::vector<int32_t> logit_rows_;               // [max sequences]
  std::vector<LoraRun> lora_runs_;                // capacity max sequences
  std::vector<float> lora_scratch_;               // [T, kMaxLoraRank]
  std::vector<float> attn_scratch_;  // kernels::AttentionScratchPerThread each
  kernels::LinearScratch scratch_;
};

}  // namespace lumen::engine
