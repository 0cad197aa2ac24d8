#include "engine/kernels/linear.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/small_gemm.h"

namespace lumen::engine::kernels {

void ActivationScratch::Reserve(int64_t rows, int64_t max_k) {
  if (static_cast<int64_t>(q.size()) < rows * max_k) q.resize(rows * max_k);
  const int64_t s = rows * ((max_k + kQBlock - 1) / kQBlock);
  if (static_cast<int64_t>(scales.size()) < s) scales.resize(s);
}

absl::StatusOr<std::unique_ptr<Linear>> Linear::CreateF32(
    int64_t N, int64_t K, std::vector<float> w, std::vector<float> bias) {
  if (static_cast<int64_t>(w.size()) != N * K ||
      (!bias.empty() && static_cast<int64_t>(bias.size()) != N)) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear: bad sizes for ", N, "x", K));
  }
  std::unique_ptr<Linear> l(new Linear());
  l->format_ = WeightFormat::kF32;
  l->N_ = N;
  l->K_ = K;
  l->w_f32_ = std::move(w);
  l->bias_ = std::move(bias);
  auto mm = DnnlMatmulF32::Create(K, N, l->w_f32_.data(),
                                  l->bias_.empty() ? nullptr : l->bias_.data());
  if (!mm.ok()) return mm.status();
  l->dnnl_ = std::move(*mm);
  return l;
}

absl::StatusOr<std::unique_ptr<Linear>> Linear::CreateInt8(
    int64_t N, int64_t K, std::vector<int8_t> q, std::vector<float> scales,
    std::vector<float> bias) {
  if (K % kQBlock != 0 || static_cast<int64_t>(q.size()) != N * K ||
      static_cast<int64_t>(scales.size()) != N * K / kQBlock ||
      (!bias.empty() && static_cast<int64_t>(bias.size()) != N)) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear: bad int8 sizes for ", N, "x", K));
  }
  std::unique_ptr<Linear> l(new Linear());
  l->format_ = WeightFormat::kInt8;
  l->N_ = N;
  l->K_ = K;
  l->w_q_ = std::move(q);
  l->w_scales_ = std::move(scales);
  l->bias_ = std::move(bias);
  l->crossover_ = INT64_MAX;
  return l;
}

int64_t Linear::resident_bytes() const {
  return w_f32_.size() * 4 + w_q_.size() + w_scales_.size() * 4 +
         bias_.size() * 4;
}

void Linear::AddBias(int64_t M, float* y) const {
  if (bias_.empty()) return;
  for (int64_t m = 0; m < M; ++m) AddInPlace(y + m * N_, bias_.data(), N_);
}

absl::Status Linear::Forward(const float* x, int64_t M, float* y,
                             ActivationScratch* scratch) const {
  if (format_ == WeightFormat::kInt8) {
    QuantizeRowsQ8(x, M, K_, scratch->q.data(), scratch->scales.data());
    SmallGemmQ8(scratch->q.data(), scratch->scales.data(), M, K_, w_q_.data(),
                w_scales_.data(), N_, y);
    AddBias(M, y);
    return absl::OkStatus();
  }
  if (M >= crossover_) return dnnl_->Run(x, M, y);  // bias fused
  SmallGemmF32(x, M, K_, w_f32_.data(), N_, y);
  AddBias(M, y);
  return absl::OkStatus();
}

int64_t Linear::MeasureCrossover() const {
  if (format_ != WeightFormat::kF32) return INT64_MAX;
  constexpr int64_t kMaxM = 128;
  std::vector<float> x(kMaxM * K_, 0.25f), y(kMaxM * N_);
  auto time = [&](auto&& fn) {
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      best = std::min(best, std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - t0)
                                .count());
    }
    return best;
  };
  int wins = 0;
  int64_t first_win = kMaxM * 2;
  for (int64_t m = 1; m <= kMaxM; m *= 2) {
    const double small = time(
        [&] { SmallGemmF32(x.data(), m, K_, w_f32_.data(), N_, y.data()); });
    const double dnnl = time([&] { (void)dnnl_->Run(x.data(), m, y.data()); });
    if (dnnl < small) {
      if (wins++ == 0) first_win = m;
      if (wins == 2) return first_win;
    } else {
      wins = 0;
    }
  }
  return wins > 0 ? first_win : kMaxM * 2;
}

}  // namespace lumen::engine::kernels
