#include "engine/model/transformer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/prefault.h"
#include "base/status_macros.h"
#include "engine/quant/quant_type.h"

namespace lumen::engine {

using kernels::Linear;

absl::StatusOr<std::unique_ptr<Transformer>> Transformer::Load(
    const GgufFile& f, const TransformerOptions& options) {
  std::unique_ptr<Transformer> m(new Transformer());
  ASSIGN_OR_RETURN(m->config_, ModelConfig::FromGguf(f));
  const ModelConfig& c = m->config_;
  if (c.family == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("architecture '", c.arch, "' is not supported (",
                     SupportedArchitectures(), ")"));
  }
  m->options_ = options;
  if (m->options_.max_context <= 0) m->options_.max_context = c.n_ctx_train;
  if (m->options_.num_threads <= 0)
    m->options_.num_threads = omp_get_max_threads();
  const int64_t T = m->options_.max_batch_tokens;
  if (T <= 0) {
    return absl::InvalidArgumentError("max_batch_tokens must be positive");
  }

  const WeightMode mode = options.weights;

  const int64_t d = c.n_embd;
  ASSIGN_OR_RETURN(const GgufTensorInfo* embd,
                   FindWeight(f, "token_embd.weight", {d, c.n_vocab}));
  ASSIGN_OR_RETURN(m->output_norm_, ReadVector(f, "output_norm.weight", d));
  const GgufTensorInfo* out = embd;
  if (!c.tied_output) {
    ASSIGN_OR_RETURN(out, FindWeight(f, "output.weight", {d, c.n_vocab}));
  }
  ASSIGN_OR_RETURN(m->output_, MakeLinear(f, {WholeMatrix(out)}, {}, mode));
  m->resident_.output = m->output_->resident_bytes();
  // A tied head in fp32 or in the tensor's own packed blocks holds exactly
  // the embedding values: read rows from it instead of keeping a copy.
  const quant::QuantType* embd_packed = quant::FindQuantType(embd->type);
  const kernels::WeightFormat head = m->output_->format();
  if (c.tied_output &&
      (head == kernels::WeightFormat::kF32 ||
       (head == kernels::WeightFormat::kPacked && embd_packed != nullptr))) {
    m->token_embd_.shared = m->output_.get();
  } else if (embd_packed != nullptr && mode != WeightMode::kF32) {
    m->token_embd_.type = embd->type;
    ASSIGN_OR_RETURN(m->token_embd_.packed,
                     PageArray<uint8_t>::Zeros(embd->num_bytes));
    RETURN_IF_ERROR(f.ReadTensorBytes(*embd, 0, m->token_embd_.packed.span()));
    m->token_embd_.row_bytes = quant::RowBytes(*embd_packed, d);
  } else {
    ASSIGN_OR_RETURN(m->token_embd_.f32, ReadFloats(f, WholeMatrix(embd)));
  }
  m->resident_.embedding = m->token_embd_.resident_bytes();
  m->resident_.norms = m->output_norm_.size() * 4;
  RETURN_IF_ERROR(m->LoadRope(f));

  for (int64_t l = 0; l < c.n_layers; ++l) {
    ASSIGN_OR_RETURN(LayerWeights layer, LoadLayerWeights(f, c, l, mode, T));
    for (const Linear* lin : {layer.qkv.get(), layer.wo.get()})
      m->resident_.attention += lin->resident_bytes();
    m->resident_.ffn += layer.moe ? layer.moe->resident_bytes()
                                  : layer.gate_up->resident_bytes() +
                                        layer.down->resident_bytes();
    m->resident_.norms += layer.norm_bytes();
    m->layers_.push_back(std::move(layer));
  }

  m->int8_ = m->output_->format() != kernels::WeightFormat::kF32;
  for (const LayerWeights& layer : m->layers_) {
    for (const Linear* lin : layer.matrices())
      m->int8_ |= lin->format() != kernels::WeightFormat::kF32;
    if (layer.moe) m->int8_ |= mode == WeightMode::kInt8;
  }
  RETURN_IF_ERROR(m->AllocateBuffers());
  if (options.measure_crossover) m->ChooseKernels();
  m->PinKernelsIfPacked();
  return m;
}

void Transformer::ChooseKernels() {
  const int64_t T = options_.max_batch_tokens;
  const auto start = std::chrono::steady_clock::now();
  // A file that cannot be read is timed over (and not written): the
  // choice is only ever a speed question. Its entries are keyed by the
  // team that times (and later runs) the kernels: the calling thread's.
  std::unique_ptr<kernels::KernelChoiceCache> cache;
  std::string cache_problem;
  if (!options_.kernel_choice_file.empty()) {
    auto opened = kernels::KernelChoiceCache::Open(options_.kernel_choice_file,
                                                   omp_get_max_threads());
    if (opened.ok()) {
      cache = std::move(*opened);
    } else {
      cache_problem = std::string(opened.status().message());
    }
  }
  int timed = 0;  // shapes timed (the others: packed, or in the file)
  // Every layer has the same shapes: measure the first layer's matrices
  // and the output head, and share the result.
  LayerWeights& first = layers_[0];
  for (Linear* lin : first.matrices()) {
    timed += lin->MeasureKernelChoice(256, cache.get());
    for (LayerWeights& layer : layers_) {
      for (Linear* other : layer.matrices()) {
        if (other != lin && other->rows() == lin->rows() &&
            other->cols() == lin->cols()) {
          other->CopyKernelChoice(*lin);
        }
      }
    }
  }
  if (first.moe) {
    timed += first.moe->MeasureKernelChoice(cache.get());
    for (LayerWeights& layer : layers_) layer.moe->CopyKernelChoice(*first.moe);
  }
  const int64_t logit_rows =
      options_.max_logit_rows > 0 ? std::min(options_.max_logit_rows, T) : T;
  timed += output_->MeasureKernelChoice(logit_rows, cache.get());
  if (cache != nullptr) {
    if (absl::Status s = cache->Save(); !s.ok())
      cache_problem = std::string(s.message());
  }
  kernel_choice_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (timed > 0) {
    kernel_choice_source_ = absl::StrFormat("timed %d shapes in %.2f s", timed,
                                            kernel_choice_seconds_);
    if (cache != nullptr && cache_problem.empty())
      absl::StrAppend(&kernel_choice_source_, "; saved to ", cache->path());
  } else if (cache != nullptr && cache->hits() > 0) {
    kernel_choice_source_ = absl::StrCat("from ", cache->path());
  } else {
    kernel_choice_source_ = "nothing to time (packed weights, fp32 panels)";
  }
  if (!cache_problem.empty())
    absl::StrAppend(&kernel_choice_source_, "; not saved: ", cache_problem);
}

absl::Status Transformer::LoadRope(const GgufFile& f) {
  const RopeConfig& r = config_.rope;
  const int64_t half = r.dim / 2;
  std::vector<float> factors;
  std::string factor_note;
  switch (r.factor_tensors) {
    case RopeFactorTensors::kNone:
      break;
    case RopeFactorTensors::kFreqs: {
      ASSIGN_OR_RETURN(factors, ReadVector(f, "rope_freqs.weight", half));
      factor_note = ", rope_freqs factors";
      break;
    }
    case RopeFactorTensors::kLongShort: {
      // llama.cpp pads the context to a multiple of 256 before comparing
      // (GGML_PAD in llama-context.cpp).
      const int64_t padded = (options_.max_context + 255) / 256 * 256;
      const bool use_long = padded > r.original_context;
      ASSIGN_OR_RETURN(factors,
                       ReadVector(f,
                                  use_long ? "rope_factors_long.weight"
                                           : "rope_factors_short.weight",
                                  half));
      factor_note = absl::StrCat(
          ", longrope ", use_long ? "long" : "short", " factors (context ",
          padded, use_long ? " > " : " <= ", r.original_context, ")");
      break;
    }
  }
  for (float v : factors) {
    if (!(v > 0.0f) || !std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("rope frequency factor ", v, " is not positive"));
    }
  }
  resident_.norms += factors.size() * 4;
  rope_[0] = GlobalRopeFrequencies(r, factors);
  rope_[1] = SlidingRopeFrequencies(r);
  rope_summary_ = absl::StrCat(
      family().rope_style == kernels::RopeStyle::kAdjacent ? "adjacent pairs"
                                                           : "neox halves",
      ", dim ", r.dim, ", base ", r.base);
  if (r.factor != 1.0) {
    absl::StrAppend(&rope_summary_, ", ", RopeScalingName(r.scaling),
                    " scaling x", r.factor, " of ", r.original_context);
  }
  absl::StrAppend(&rope_summary_, factor_note);
  if (r.attn_factor != 1.0 || rope_[0].mscale != 1.0f) {
    absl::StrAppend(&rope_summary_,
                    absl::StrFormat(", cos/sin x%.6g", rope_[0].mscale));
  }
  if (config_.sliding_window > 0) {
    absl::StrAppend(&rope_summary_, "; sliding-window layers base ",
                    r.base_sliding);
  }
  return absl::OkStatus();
}

absl::Status Transformer::AllocateBuffers() {
  const ModelConfig& c = config_;
  const int64_t T = options_.max_batch_tokens;
  const int64_t widest_ff = std::max({c.n_ff, c.n_ff_expert, c.n_ff_shared});
  // Activations of up to T tokens: tens of MB, mapped up front like the
  // weights (base/prefault.h).
  AssignPrefaulted(x_, T * c.n_embd);
  AssignPrefaulted(xn_, T * std::max(c.n_embd, c.q_dim()));
  AssignPrefaulted(qkv_, T * (c.q_dim() + 2 * c.kv_dim()));
  AssignPrefaulted(attn_, T * c.q_dim());
  AssignPrefaulted(proj_, T * c.n_embd);
  if (!c.moe()) {
    AssignPrefaulted(gate_up_, T * 2 * c.n_ff);
    AssignPrefaulted(hidden_, T * c.n_ff);
  }
  positions_.assign(T, 0);
  for (int i = 0; i < 2; ++i) {
    rope_cos_[i].assign(T * c.rope.dim / 2, 0.0f);
    rope_sin_[i].assign(T * c.rope.dim / 2, 0.0f);
  }
  queries_.assign(T, {});
  logit_rows_.assign(T, 0);
  lora_runs_.reserve(T);
  lora_scratch_.assign(T * kMaxLoraRank, 0.0f);
  // (The window does not change the scratch a token needs.)
  const kernels::AttentionShape attention{c.n_heads, c.n_kv_heads, c.head_dim,
                                          1.0f};
  AssignPrefaulted(attn_scratch_,
                   options_.num_threads * kernels::AttentionScratchPerThread(
                                              attention, options_.max_context));
  scratch_.Reserve(std::max<int64_t>(T, 256),
                   std::max({c.n_embd, c.q_dim(), widest_ff}),
                   options_.num_threads);
  return absl::OkStatus();
}

void Transformer::PinKernelsIfPacked() {
  std::vector<Linear*> all = {output_.get()};
  for (LayerWeights& layer : layers_) {
    for (Linear* lin : layer.matrices()) all.push_back(lin);
    if (layer.moe) {
      for (Linear* lin : layer.moe->Matrices()) all.push_back(lin);
    }
  }
  const bool packed = std::any_of(all.begin(), all.end(), [](Linear* lin) {
    return lin->format() == kernels::WeightFormat::kPacked;
  });
  if (!packed) return;
  // Packed kernels give a row the same bits whatever the step's row count
  // (quant_kernels.h). The other matrices of a quantized model (fp32 ones
  // the quantizer could not block, an f16 output head, the MoE router, whose
  // top-k turns an ulp into another expert) keep that only with one kernel
  // for every M: oneDNN's other summation order at M >= 16 moved a
  // stories260K-Q4_K_M sequence's logits by 1% inside a batch. The small
  // kernel ran within 5% of oneDNN at M = 256 on the 110M shapes
  // (gemm_bench).
  for (Linear* lin : all) {
    if (lin->format() != kernels::WeightFormat::kPacked) {
      lin->ForceKernel(false);
    }
  }
}

int64_t Transformer::weight_bytes_per_step() const {
  int64_t bytes = output_->resident_bytes();
  for (const LayerWeights& l : layers_) {
    for (const Linear* lin : l.matrices()) bytes += lin->resident_bytes();
    if (l.moe) bytes += l.moe->active_bytes_per_token();
  }
  return bytes;
}

int64_t Transformer::matmul_macs_per_token() const {
  int64_t macs = output_->rows() * output_->cols();
  for (const LayerWeights& l : layers_) {
    for (const Linear* lin : l.matrices()) macs += lin->rows() * lin->cols();
    if (l.moe) macs += l.moe->active_macs_per_token();
  }
  return macs;
}

std::string Transformer::WeightsSummary() const {
  std::map<std::string, int> counts;
  counts[output_->TypeSummary()]++;
  for (const LayerWeights& l : layers_) {
    for (const Linear* lin : l.matrices()) counts[lin->TypeSummary()]++;
  }
  std::string s;
  for (const auto& [format, n] : counts)
    absl::StrAppend(&s, s.empty() ? "" : ", ", format, " ", n);
  return s;
}

void Transformer::EmbeddingRow(int32_t token, float* out) const {
  const int64_t d = config_.n_embd;
  if (token_embd_.shared != nullptr) {
    token_embd_.shared->DequantizeRow(token, out);
  } else if (!token_embd_.packed.empty()) {
    quant::FindQuantType(token_embd_.type)
        ->dequantize_row(
            token_embd_.packed.data() + token * token_embd_.row_bytes, out, d);
  } else {
    std::memcpy(out, &token_embd_.f32[token * d], d * sizeof(float));
  }
}

std::string Transformer::KernelChoiceSummary() const {
  const LayerWeights& l = layers_[0];
  std::string s = absl::StrCat("qkv ", l.qkv->KernelChoiceSummary(), "; wo ",
                               l.wo->KernelChoiceSummary());
  if (l.gate_up) {
    absl::StrAppend(&s, "; gate_up ", l.gate_up->KernelChoiceSummary(),
                    "; down ", l.down->KernelChoiceSummary());
  }
  absl::StrAppend(&s, "; output ", output_->KernelChoiceSummary());
  return s;
}

void Transformer::ExpertTokenCounts(std::vector<int64_t>* counts) const {
  counts->clear();
  if (!config_.moe()) return;
  for (const LayerWeights& l : layers_) {
    for (int64_t e = 0; e < config_.n_experts; ++e)
      counts->push_back(l.moe->expert_tokens(e));
  }
}

absl::Status Transformer::Forward(const Batch& batch, KvCache* cache,
                                  std::span<float> logits) {
  RETURN_IF_ERROR(PrepareStep(batch, *cache, logits));
  if (step_tokens_ == 0) return absl::OkStatus();
  step_cache_ = cache;
  profile_mark_ = std::chrono::steady_clock::now();
  ++profile_.steps;

  Embed(batch.tokens);
  for (int i = 0; i < (config_.sliding_window > 0 ? 2 : 1); ++i) {
    kernels::RopeAngles(positions_.data(), step_tokens_,
                        rope_[i].frequency.data(), config_.rope.dim / 2,
                        rope_[i].mscale, rope_cos_[i].data(),
                        rope_sin_[i].data());
  }
  Charge(&profile_.other);
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    for (BlockStep step : family().block) RETURN_IF_ERROR(RunStep(step, l));
  }
  return ComputeLogits(logits);
}

absl::Status Transformer::PrepareStep(const Batch& batch, const KvCache& cache,
                                      std::span<const float> logits) {
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  step_tokens_ = 0;
  step_logit_rows_ = 0;
  if (n == 0) return absl::OkStatus();
  if (n > options_.max_batch_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", n, " tokens exceeds max_batch_tokens ",
                     options_.max_batch_tokens));
  }
  const int64_t bs = cache.shape().block_size;
  int64_t t = 0, n_logits = 0;
  lora_runs_.clear();
  for (const BatchSequence& s : batch.sequences) {
    const int64_t end = static_cast<int64_t>(s.start_position) + s.num_tokens;
    if (s.num_tokens <= 0 || s.start_position < 0 ||
        end > options_.max_context) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence positions [", s.start_position, ", ", end,
                       ") outside the context of ", options_.max_context));
    }
    if (static_cast<int64_t>(s.block_table.size()) * bs < end) {
      return absl::InvalidArgumentError(
          absl::StrCat("block table of ", s.block_table.size(),
                       " blocks cannot hold ", end, " positions"));
    }
    for (int32_t block : s.block_table) {
      if (block < 0 || block >= cache.shape().num_blocks) {
        return absl::InvalidArgumentError(
            absl::StrCat("KV block id ", block, " out of range"));
      }
    }
    if (t + s.num_tokens > n) break;
    if (s.adapter != nullptr) {
      if (!lora_runs_.empty() && lora_runs_.back().adapter == s.adapter &&
          lora_runs_.back().first_row + lora_runs_.back().rows == t) {
        lora_runs_.back().rows += s.num_tokens;
      } else {
        lora_runs_.push_back({t, s.num_tokens, s.adapter});
      }
    }
    for (int32_t i = 0; i < s.num_tokens; ++i, ++t) {
      positions_[t] = s.start_position + i;
      queries_[t] = {s.start_position + i, s.block_table.data()};
    }
    if (s.want_logits) logit_rows_[n_logits++] = t - 1;
  }
  if (t != n) {
    return absl::InvalidArgumentError(
        "sequence token counts do not add up to the batch size");
  }
  if (static_cast<int64_t>(logits.size()) < n_logits * c.n_vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("logits of ", logits.size(), " floats cannot hold ",
                     n_logits, " rows of ", c.n_vocab));
  }
  for (int32_t tok : batch.tokens) {
    if (tok < 0 || tok >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token id ", tok, " outside the vocabulary of ", c.n_vocab));
    }
  }
  step_tokens_ = n;
  step_logit_rows_ = n_logits;
  return absl::OkStatus();
}

void Transformer::Embed(std::span<const int32_t> tokens) {
  const int64_t d = config_.n_embd;
  for (size_t i = 0; i < tokens.size(); ++i)
    EmbeddingRow(tokens[i], &x_[i * d]);
  if (config_.embedding_scale != 1.0) {
    kernels::ScaleInPlace(x_.data(),
                          static_cast<float>(config_.embedding_scale),
                          static_cast<int64_t>(tokens.size()) * d);
  }
}

absl::Status Transformer::ComputeLogits(std::span<float> logits) {
  const int64_t d = config_.n_embd;
  const float eps = static_cast<float>(config_.norm_eps);
  // Only the rows that will be sampled go through the final norm and head.
  for (int64_t r = 0; r < step_logit_rows_; ++r) {
    kernels::RmsNorm(&x_[logit_rows_[r] * d], output_norm_.data(), 1, d, eps,
                     &xn_[r * d]);
  }
  Charge(&profile_.other);
  RETURN_IF_ERROR(
      output_->Forward(xn_.data(), step_logit_rows_, logits.data(), &scratch_));
  Charge(&profile_.matmul);
  return absl::OkStatus();
}

void Transformer::Charge(double* phase) {
  const auto now = std::chrono::steady_clock::now();
  *phase += std::chrono::duration<double>(now - profile_mark_).count();
  profile_mark_ = now;
}

}  // namespace lumen::engine
