#include "engine/model/moe_ffn.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/kernels/cpu_ops.h"

namespace lumen::engine {

using kernels::Linear;

absl::StatusOr<std::unique_ptr<MoeFfn>> MoeFfn::Create(
    const MoeShape& shape, std::unique_ptr<Linear> router,
    std::vector<FfnExpert> experts, FfnExpert shared,
    std::vector<float> shared_gate, int64_t max_tokens) {
  const int64_t d = shape.n_embd;
  if (shape.n_experts <= 0 || shape.n_used <= 0 ||
      shape.n_used > shape.n_experts) {
    return absl::InvalidArgumentError(
        absl::StrCat("expert_used_count ", shape.n_used,
                     " must be in [1, expert_count ", shape.n_experts, "]"));
  }
  if (router->rows() != shape.n_experts || router->cols() != d ||
      static_cast<int64_t>(experts.size()) != shape.n_experts) {
    return absl::InvalidArgumentError("MoE router and experts do not match");
  }
  for (const FfnExpert& e : experts) {
    if (e.gate_up->rows() != 2 * shape.n_ff || e.gate_up->cols() != d ||
        e.down->rows() != d || e.down->cols() != shape.n_ff) {
      return absl::InvalidArgumentError("MoE expert of the wrong shape");
    }
  }
  if ((shape.shared_ff > 0) != (shared.gate_up != nullptr) ||
      (shape.shared_ff > 0 && static_cast<int64_t>(shared_gate.size()) != d)) {
    return absl::InvalidArgumentError("MoE shared expert is incomplete");
  }
  std::unique_ptr<MoeFfn> m(new MoeFfn());
  m->shape_ = shape;
  m->router_ = std::move(router);
  m->experts_ = std::move(experts);
  m->shared_ = std::move(shared);
  m->shared_gate_ = std::move(shared_gate);
  m->routed_ = std::make_unique<std::atomic<int64_t>[]>(shape.n_experts);
  for (int64_t e = 0; e < shape.n_experts; ++e) m->routed_[e] = 0;
  const int64_t T = max_tokens, max_ff = std::max(shape.n_ff, shape.shared_ff);
  m->logits_.assign(T * shape.n_experts, 0.0f);
  m->choice_.assign(T * shape.n_used, 0);
  m->weight_.assign(T * shape.n_used, 0.0f);
  m->offsets_.assign(shape.n_experts + 1, 0);
  m->order_.assign(T * shape.n_used, 0);
  m->gathered_.assign(T * d, 0.0f);
  m->gate_up_.assign(T * 2 * max_ff, 0.0f);
  m->hidden_.assign(T * max_ff, 0.0f);
  m->expert_out_.assign(T * d, 0.0f);
  return m;
}

absl::Status MoeFfn::RunExpert(const FfnExpert& e, const float* x, int64_t n,
                               float* y, kernels::LinearScratch* scratch) {
  const int64_t ff = e.down->cols();
  RETURN_IF_ERROR(e.gate_up->Forward(x, n, gate_up_.data(), scratch));
  kernels::SiluMul(gate_up_.data(), n, ff, hidden_.data());
  return e.down->Forward(hidden_.data(), n, y, scratch);
}

absl::Status MoeFfn::Forward(const float* x, int64_t n, float* out,
                             kernels::LinearScratch* scratch) {
  const int64_t d = shape_.n_embd, E = shape_.n_experts, k = shape_.n_used;
  RETURN_IF_ERROR(router_->Forward(x, n, logits_.data(), scratch));

  // Gate: softmax over all experts, keep the top k (ties: lower index).
  std::fill(offsets_.begin(), offsets_.end(), 0);
  for (int64_t t = 0; t < n; ++t) {
    float* p = &logits_[t * E];
    const float mx = *std::max_element(p, p + E);
    float sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(p[e] - mx));
    for (int64_t e = 0; e < E; ++e) p[e] /= sum;
    float chosen_sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      int64_t best = -1;
      for (int64_t e = 0; e < E; ++e) {
        if (p[e] >= 0 && (best < 0 || p[e] > p[best])) best = e;
      }
      choice_[t * k + j] = static_cast<int32_t>(best);
      weight_[t * k + j] = p[best];
      chosen_sum += p[best];
      p[best] = -1.0f;  // taken
      ++offsets_[best + 1];
    }
    if (shape_.normalize_top_k) {
      for (int64_t j = 0; j < k; ++j) weight_[t * k + j] /= chosen_sum;
    }
  }
  // Group the (token, slot) pairs by expert: a counting sort.
  for (int64_t e = 0; e < E; ++e) offsets_[e + 1] += offsets_[e];
  for (int64_t s = 0; s < n * k; ++s) {
    // offsets_[e] is advanced as slots are placed, then restored below.
    order_[offsets_[choice_[s]]++] = static_cast<int32_t>(s);
  }
  for (int64_t e = E; e > 0; --e) offsets_[e] = offsets_[e - 1];
  offsets_[0] = 0;

  std::memset(out, 0, n * d * sizeof(float));
  for (int64_t e = 0; e < E; ++e) {
    const int32_t begin = offsets_[e], count = offsets_[e + 1] - begin;
    if (count == 0) continue;
    routed_[e].fetch_add(count, std::memory_order_relaxed);
    for (int32_t i = 0; i < count; ++i) {
      const int64_t token = order_[begin + i] / k;
      std::memcpy(&gathered_[i * d], x + token * d, d * sizeof(float));
    }
    RETURN_IF_ERROR(RunExpert(experts_[e], gathered_.data(), count,
                              expert_out_.data(), scratch));
    for (int32_t i = 0; i < count; ++i) {
      const int32_t slot = order_[begin + i];
      kernels::Axpy(weight_[slot], &expert_out_[i * d], out + (slot / k) * d,
                    d);
    }
  }
  if (shape_.shared_ff > 0) {
    RETURN_IF_ERROR(RunExpert(shared_, x, n, expert_out_.data(), scratch));
    for (int64_t t = 0; t < n; ++t) {
      const float g = kernels::Dot(x + t * d, shared_gate_.data(), d);
      kernels::Axpy(1.0f / (1.0f + std::exp(-g)), &expert_out_[t * d],
                    out + t * d, d);
    }
  }
  return absl::OkStatus();
}

int64_t MoeFfn::resident_bytes() const {
  int64_t bytes = router_->resident_bytes() + shared_gate_.size() * 4;
  for (const FfnExpert& e : experts_) {
    bytes += e.gate_up->resident_bytes() + e.down->resident_bytes();
  }
  if (shared_.gate_up) {
    bytes += shared_.gate_up->resident_bytes() + shared_.down->resident_bytes();
  }
  return bytes;
}

int64_t MoeFfn::active_bytes_per_token() const {
  const FfnExpert& e = experts_[0];
  int64_t bytes =
      router_->resident_bytes() +
      shape_.n_used * (e.gate_up->resident_bytes() + e.down->resident_bytes());
  if (shared_.gate_up) {
    bytes += shared_.gate_up->resident_bytes() + shared_.down->resident_bytes();
  }
  return bytes;
}

int64_t MoeFfn::active_macs_per_token() const {
  return shape_.n_embd *
         (shape_.n_experts + 3 * shape_.n_ff * shape_.n_used +
          3 * shape_.shared_ff + (shape_.shared_ff > 0 ? 1 : 0));
}

int MoeFfn::MeasureKernelChoice(kernels::KernelChoiceCache* cache) {
  int timed = experts_[0].gate_up->MeasureKernelChoice(256, cache);
  timed += experts_[0].down->MeasureKernelChoice(256, cache);
  for (FfnExpert& e : experts_) {
    e.gate_up->CopyKernelChoice(*experts_[0].gate_up);
    e.down->CopyKernelChoice(*experts_[0].down);
  }
  if (shared_.gate_up) {
    timed += shared_.gate_up->MeasureKernelChoice(256, cache);
    timed += shared_.down->MeasureKernelChoice(256, cache);
  }
  return timed;
}

void MoeFfn::CopyKernelChoice(const MoeFfn& other) {
  for (FfnExpert& e : experts_) {
    e.gate_up->CopyKernelChoice(*other.experts_[0].gate_up);
    e.down->CopyKernelChoice(*other.experts_[0].down);
  }
  if (shared_.gate_up && other.shared_.gate_up) {
    shared_.gate_up->CopyKernelChoice(*other.shared_.gate_up);
    shared_.down->CopyKernelChoice(*other.shared_.down);
  }
}

std::vector<kernels::Linear*> MoeFfn::Matrices() {
  std::vector<kernels::Linear*> all = {router_.get()};
  for (FfnExpert& e : experts_) {
    all.push_back(e.gate_up.get());
    all.push_back(e.down.get());
  }
  if (shared_.gate_up) {
    all.push_back(shared_.gate_up.get());
    all.push_back(shared_.down.get());
  }
  return all;
}

}  // namespace lumen::engine
