#include "engine/model/lora_adapter.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "engine/kernels/small_gemm.h"
#include "engine/model/weight_loader.h"

namespace lumen::engine {

namespace {

constexpr const char* kTargetNames[kLoraTargets] = {"q",    "k",  "v",   "o",
                                                    "gate", "up", "down"};
constexpr const char* kTargetTensors[kLoraTargets] = {
    "attn_q",   "attn_k", "attn_v",  "attn_output",
    "ffn_gate", "ffn_up", "ffn_down"};

std::atomic<uint64_t> next_adapter_id{1};

// {in, out} of a target in the base model.
std::pair<int64_t, int64_t> BaseShape(const ModelConfig& c, LoraTarget t) {
  switch (t) {
    case LoraTarget::kQ:
      return {c.n_embd, c.q_dim()};
    case LoraTarget::kK:
    case LoraTarget::kV:
      return {c.n_embd, c.kv_dim()};
    case LoraTarget::kO:
      return {c.q_dim(), c.n_embd};
    case LoraTarget::kGate:
    case LoraTarget::kUp:
      return {c.n_embd, c.n_ff};
    case LoraTarget::kDown:
      return {c.n_ff, c.n_embd};
  }
  return {0, 0};
}

}  // namespace

absl::StatusOr<LoraTarget> ParseLoraTarget(absl::string_view name) {
  for (int i = 0; i < kLoraTargets; ++i) {
    if (name == kTargetNames[i]) return static_cast<LoraTarget>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "LoRA target '", name, "' is not one of q, k, v, o, gate, up, down"));
}

const char* LoraTargetTensor(LoraTarget target) {
  return kTargetTensors[static_cast<int>(target)];
}

absl::StatusOr<std::unique_ptr<LoraAdapter>> LoraAdapter::Load(
    const GgufFile& f, const ModelConfig& base) {
  const GgufValue* type = f.Find("general.type");
  if (type == nullptr || type->type != GgufValueType::kString ||
      type->str != "adapter") {
    return absl::InvalidArgumentError(
        "not an adapter: general.type must be \"adapter\"");
  }
  const GgufValue* adapter_type = f.Find("adapter.type");
  if (adapter_type == nullptr || adapter_type->type != GgufValueType::kString ||
      adapter_type->str != "lora") {
    return absl::InvalidArgumentError(
        "not a LoRA adapter: adapter.type must be \"lora\"");
  }
  ASSIGN_OR_RETURN(absl::string_view arch, f.GetString("general.architecture"));
  if (arch != base.arch) {
    return absl::InvalidArgumentError(
        absl::StrCat("adapter is for architecture '", arch,
                     "' but the base model is '", base.arch, "'"));
  }
  std::unique_ptr<LoraAdapter> a(new LoraAdapter());
  ASSIGN_OR_RETURN(double alpha, f.GetFloatOr("adapter.lora.alpha", 0.0));
  a->alpha_ = static_cast<float>(alpha);
  a->layers_.resize(base.n_layers);

  for (const GgufTensorInfo& t : f.tensors()) {
    const absl::string_view name = t.name;
    if (absl::EndsWith(name, ".lora_b")) continue;  // handled with its lora_a
    if (!absl::EndsWith(name, ".lora_a")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter tensor ", name, " is neither .lora_a nor .lora_b"));
    }
    const absl::string_view base_name = name.substr(0, name.size() - 7);
    // blk.<layer>.<tensor>.weight
    const std::vector<absl::string_view> parts = absl::StrSplit(base_name, '.');
    int64_t layer = -1;
    int target = -1;
    if (parts.size() == 4 && parts[0] == "blk" && parts[3] == "weight" &&
        absl::SimpleAtoi(parts[1], &layer)) {
      for (int i = 0; i < kLoraTargets; ++i) {
        if (parts[2] == kTargetTensors[i]) target = i;
      }
    }
    if (target < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter tensor ", name,
          " adapts a tensor Lumen cannot adapt (blk.N.{attn_q,attn_k,attn_v,"
          "attn_output,ffn_gate,ffn_up,ffn_down}.weight)"));
    }
    if (layer < 0 || layer >= base.n_layers) {
      return absl::InvalidArgumentError(absl::StrCat("adapter tensor ", name,
                                                     ": the base model has ",
                                                     base.n_layers, " layers"));
    }
    const auto lt = static_cast<LoraTarget>(target);
    if (base.moe() && target >= static_cast<int>(LoraTarget::kGate)) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter tensor ", name,
                       ": the base model's feed-forward layers are experts, "
                       "which adapters cannot target"));
    }
    const std::string b_name = absl::StrCat(base_name, ".lora_b");
    const GgufTensorInfo* b = f.FindTensor(b_name);
    if (b == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter tensor ", b_name, " is missing"));
    }
    const auto [in, out] = BaseShape(base, lt);
    if (t.dims.size() != 2 || b->dims.size() != 2 || t.dims[0] != in ||
        b->dims[1] != out || t.dims[1] != b->dims[0]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter tensors ", name, " {", absl::StrJoin(t.dims, ", "), "} and ",
          b_name, " {", absl::StrJoin(b->dims, ", "),
          "} do not fit base tensor ", base_name, " {", in, ", ", out,
          "}: expected lora_a {", in, ", r} and lora_b {r, ", out, "}"));
    }
    const int64_t rank = t.dims[1];
    if (rank <= 0 || rank > kMaxLoraRank) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter tensor ", name, " has rank ", rank,
                       "; supported 1..", kMaxLoraRank));
    }
    auto m = std::make_unique<LoraMatrix>();
    m->rank = rank, m->in = in, m->out = out;
    ASSIGN_OR_RETURN(m->a, ReadFloats(f, WholeMatrix(&t)));
    ASSIGN_OR_RETURN(std::vector<float> bmat,
                     ReadFloats(f, WholeMatrix(b)));  // [out, rank]
    // llama.cpp: scale = alpha / rank, or 1 when alpha is 0.
    const float scale = a->alpha_ != 0 ? a->alpha_ / rank : 1.0f;
    m->bt.assign(rank * out, 0.0f);
    for (int64_t o = 0; o < out; ++o) {
      for (int64_t j = 0; j < rank; ++j)
        m->bt[j * out + o] = scale * bmat[o * rank + j];
    }
    a->num_parameters_ += rank * (in + out);
    a->max_rank_ = std::max(a->max_rank_, rank);
    a->layers_[layer][target] = std::move(m);
  }
  if (a->num_parameters_ == 0) {
    return absl::InvalidArgumentError("adapter has no .lora_a tensors");
  }
  // .lora_b tensors without a matching .lora_a.
  for (const GgufTensorInfo& t : f.tensors()) {
    if (!absl::EndsWith(t.name, ".lora_b")) continue;
    const std::string a_name =
        absl::StrCat(t.name.substr(0, t.name.size() - 7), ".lora_a");
    if (f.FindTensor(a_name) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter tensor ", a_name, " is missing"));
    }
  }
  a->id_ = next_adapter_id.fetch_add(1);
  return a;
}

std::string LoraAdapter::TargetSummary() const {
  std::string s;
  for (int i = 0; i < kLoraTargets; ++i) {
    for (const LayerMatrices& l : layers_) {
      if (l[i]) {
        absl::StrAppend(&s, s.empty() ? "" : ",", kTargetNames[i]);
        break;
      }
    }
  }
  return s;
}

void LoraAdapter::AddDelta(const LoraMatrix& m, const float* x, int64_t rows,
                           float* y, int64_t ldy, float* scratch) {
  // t = x A^T: a small GEMM with A as the [rank, in] weight matrix.
  float* t = scratch;
  kernels::SmallGemmF32(x, rows, m.in, m.a.data(), m.rank, t);
  // y += t B^T in register blocks of up to 4 rows x 16 columns: each B^T
  // load serves 4 rows, each broadcast of t serves 16 columns, and no
  // horizontal sums are needed.
  const int64_t chunks = (m.out + 15) / 16;
#pragma omp parallel for schedule(static) if (rows * m.rank * m.out > (1 << 15))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t col = c * 16, width = std::min<int64_t>(16, m.out - col);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask0 =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(width)), lane);
    const __m256i mask1 = _mm256_cmpgt_epi32(
        _mm256_set1_epi32(static_cast<int>(width) - 8), lane);
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
      const int64_t n = std::min<int64_t>(4, rows - r0);
      __m256 acc0[4], acc1[4];
      for (int64_t i = 0; i < n; ++i) {
        float* yr = y + (r0 + i) * ldy + col;
        acc0[i] = _mm256_maskload_ps(yr, mask0);
        acc1[i] = _mm256_maskload_ps(yr + 8, mask1);
      }
      for (int64_t j = 0; j < m.rank; ++j) {
        const float* bj = &m.bt[j * m.out + col];
        const __m256 b0 = _mm256_maskload_ps(bj, mask0);
        const __m256 b1 = _mm256_maskload_ps(bj + 8, mask1);
        for (int64_t i = 0; i < n; ++i) {
          const __m256 tv = _mm256_broadcast_ss(&t[(r0 + i) * m.rank + j]);
          acc0[i] = _mm256_fmadd_ps(tv, b0, acc0[i]);
          acc1[i] = _mm256_fmadd_ps(tv, b1, acc1[i]);
        }
      }
      for (int64_t i = 0; i < n; ++i) {
        float* yr = y + (r0 + i) * ldy + col;
        _mm256_maskstore_ps(yr, mask0, acc0[i]);
        _mm256_maskstore_ps(yr + 8, mask1, acc1[i]);
      }
    }
  }
}

}  // namespace lumen::engine
