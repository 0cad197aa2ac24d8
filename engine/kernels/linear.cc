#include "engine/kernels/linear.h"

#include <bit>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/small_gemm.h"

namespace lumen::engine::kernels {

void LinearScratch::Reserve(int64_t rows, int64_t max_k,
                            int64_t max_weight_elements) {
  if (static_cast<int64_t>(q.size()) < rows * max_k) q.resize(rows * max_k);
  const int64_t s = rows * ((max_k + kQBlock - 1) / kQBlock);
  if (static_cast<int64_t>(scales.size()) < s) scales.resize(s);
  if (static_cast<int64_t>(weights.size()) < max_weight_elements) {
    weights.resize(max_weight_elements);
  }
}

namespace {
std::array<bool, Linear::kBuckets> DefaultChoice() {
  std::array<bool, Linear::kBuckets> c{};
  for (int b = 4; b < Linear::kBuckets; ++b) c[b] = true;  // M >= 16
  return c;
}
}  // namespace

absl::StatusOr<std::unique_ptr<Linear>> Linear::CreateF32(
    int64_t N, int64_t K, std::vector<float> w, std::vector<float> bias) {
  if (static_cast<int64_t>(w.size()) != N * K) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear: bad sizes for ", N, "x", K));
  }
  std::unique_ptr<Linear> l(new Linear());
  l->format_ = WeightFormat::kF32;
  l->w_f32_ = std::move(w);
  if (absl::Status s = l->Init(N, K, std::move(bias)); !s.ok()) return s;
  return l;
}

absl::StatusOr<std::unique_ptr<Linear>> Linear::CreateInt8(
    int64_t N, int64_t K, std::vector<int8_t> q, std::vector<float> scales,
    std::vector<float> bias) {
  if (K % kQBlock != 0 || static_cast<int64_t>(q.size()) != N * K ||
      static_cast<int64_t>(scales.size()) != N * K / kQBlock) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear: bad int8 sizes for ", N, "x", K));
  }
  std::unique_ptr<Linear> l(new Linear());
  l->format_ = WeightFormat::kInt8;
  l->w_q_ = std::move(q);
  l->w_scales_ = std::move(scales);
  if (absl::Status s = l->Init(N, K, std::move(bias)); !s.ok()) return s;
  return l;
}

absl::Status Linear::Init(int64_t N, int64_t K, std::vector<float> bias) {
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != N) {
    return absl::InvalidArgumentError(absl::StrCat(
        "linear: bias of ", bias.size(), " values for ", N, " outputs"));
  }
  N_ = N;
  K_ = K;
  bias_ = std::move(bias);
  use_dnnl_ = DefaultChoice();
  auto mm = DnnlMatmulF32::Create(K, N, bias_.empty() ? nullptr : bias_.data());
  if (!mm.ok()) return mm.status();
  dnnl_ = std::move(*mm);
  return absl::OkStatus();
}

int64_t Linear::resident_bytes() const {
  return w_f32_.size() * 4 + w_q_.size() + w_scales_.size() * 4 +
         bias_.size() * 4;
}

int Linear::Bucket(int64_t M) {
  return std::min<int>(kBuckets - 1,
                       std::bit_width(static_cast<uint64_t>(M)) - 1);
}

void Linear::AddBias(int64_t M, float* y) const {
  if (bias_.empty()) return;
  for (int64_t m = 0; m < M; ++m) AddInPlace(y + m * N_, bias_.data(), N_);
}

absl::Status Linear::RunSmall(const float* x, int64_t M, float* y,
                              LinearScratch* scratch) const {
  if (format_ == WeightFormat::kInt8) {
    QuantizeRowsQ8(x, M, K_, scratch->q.data(), scratch->scales.data());
    SmallGemmQ8(scratch->q.data(), scratch->scales.data(), M, K_, w_q_.data(),
                w_scales_.data(), N_, y);
  } else {
    SmallGemmF32(x, M, K_, w_f32_.data(), N_, y);
  }
  AddBias(M, y);
  return absl::OkStatus();
}

absl::Status Linear::RunDnnl(const float* x, int64_t M, float* y,
                             LinearScratch* scratch) const {
  if (format_ == WeightFormat::kF32) return dnnl_->Run(x, M, w_f32_.data(), y);
  // Large M amortizes dequantizing the weights once per call: the GEMM then
  // runs at oneDNN's fp32 speed.
  float* w = scratch->weights.data();
  const int64_t blocks = N_ * K_ / kQBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const float s = w_scales_[b];
    const int8_t* q = w_q_.data() + b * kQBlock;
    float* out = w + b * kQBlock;
    for (int i = 0; i < kQBlock; ++i) out[i] = s * q[i];
  }
  return dnnl_->Run(x, M, w, y);  // bias fused
}

absl::Status Linear::Forward(const float* x, int64_t M, float* y,
                             LinearScratch* scratch) const {
  const bool dnnl = use_dnnl_[Bucket(M)] &&
                    (format_ == WeightFormat::kF32 ||
                     static_cast<int64_t>(scratch->weights.size()) >= N_ * K_);
  return dnnl ? RunDnnl(x, M, y, scratch) : RunSmall(x, M, y, scratch);
}

void Linear::MeasureKernelChoice(LinearScratch* scratch) {
  constexpr int64_t kMaxM = 256;
  if (static_cast<int64_t>(scratch->q.size()) < kMaxM * K_) return;
  std::vector<float> x(kMaxM * K_), y(kMaxM * N_);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = 0.01f * static_cast<float>(i % 101) - 0.5f;
  auto time = [&](bool dnnl, int64_t m) {
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      (void)(dnnl ? RunDnnl(x.data(), m, y.data(), scratch)
                  : RunSmall(x.data(), m, y.data(), scratch));
      best = std::min(best, std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - t0)
                                .count());
    }
    return best;
  };
  const bool dnnl_possible =
      format_ == WeightFormat::kF32 ||
      static_cast<int64_t>(scratch->weights.size()) >= N_ * K_;
  for (int b = 0; b < kBuckets; ++b) {
    const int64_t m = int64_t{1} << b;
    if (!dnnl_possible) {
      use_dnnl_[b] = false;
    } else if (m > kMaxM) {
      use_dnnl_[b] = true;
    } else {
      use_dnnl_[b] = time(true, m) < time(false, m);
    }
  }
}

std::string Linear::KernelChoiceSummary() const {
  std::string out = use_dnnl_[0] ? "dnnl" : "small";
  for (int b = 1; b < kBuckets; ++b) {
    if (use_dnnl_[b] != use_dnnl_[b - 1]) {
      absl::StrAppend(&out, " from M=", int64_t{1} << b, " ",
                      use_dnnl_[b] ? "dnnl" : "small");
    }
  }
  return out;
}

}  // namespace lumen::engine::kernels
