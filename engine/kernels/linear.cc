#include "engine/kernels/linear.h"

#include <omp.h>

#include <bit>
#include <chrono>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/f32_panel.h"
#include "engine/kernels/small_gemm.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/quant/k_tiles.h"
#include "engine/quant/quant_kernels.h"
#include "engine/quant/quant_type.h"

namespace lumen::engine::kernels {

void LinearScratch::Reserve(int64_t rows, int64_t max_k, int threads) {
  if (static_cast<int64_t>(q.size()) < rows * max_k) q.resize(rows * max_k);
  if (static_cast<int64_t>(d4.size()) < rows * max_k / 4)
    d4.resize(rows * max_k / 4);
  if (static_cast<int64_t>(sum16.size()) < rows * max_k / 16) {
    sum16.resize(rows * max_k / 16);
  }
  if (static_cast<int64_t>(sum32.size()) < rows * max_k / 32) {
    sum32.resize(rows * max_k / 32);
    zsum32.resize(rows * max_k / 32);
  }
  if (static_cast<int64_t>(q256.size()) < rows * max_k) {
    q256.resize(rows * max_k);
    d256.resize(rows * max_k / 256);
    bsum16.resize(rows * max_k / 16);
    bsum32.resize(rows * max_k / 32);
  }
  const int64_t panel_bytes = (threads > 0 ? threads : omp_get_max_threads()) *
                              quant::PackedPanelBytes((max_k + 31) / 32 * 32);
  if (static_cast<int64_t>(panels.size()) < panel_bytes + 64) {
    panels.resize(panel_bytes + 64);
  }
  if (rounded_size < rows * max_k) {
    rounded.reset(new float[rows * max_k]);
    rounded_size = rows * max_k;
  }
  this->max_k = std::max(this->max_k, max_k);
}

int LinearScratch::panel_slots(int64_t K) const {
  const int64_t usable = static_cast<int64_t>(panels.size()) - 64;
  return usable > 0 ? static_cast<int>(usable / quant::PackedPanelBytes(K)) : 0;
}

uint8_t* LinearScratch::panel_base() {
  const uintptr_t p = reinterpret_cast<uintptr_t>(panels.data());
  return panels.data() + ((64 - p % 64) % 64);
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
  return CreateF32FromRows(
      N, K,
      [&](int64_t first, int64_t count, float* out) {
        std::memcpy(out, w.data() + first * K, count * K * sizeof(float));
        return absl::OkStatus();
      },
      std::move(bias));
}

absl::StatusOr<std::unique_ptr<Linear>> Linear::CreateF32FromRows(
    int64_t N, int64_t K, F32RowSource rows, std::vector<float> bias) {
  if (N < 0 || K < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear: bad sizes for ", N, "x", K));
  }
  std::unique_ptr<Linear> l(new Linear());
  l->format_ = WeightFormat::kF32;
  // On the 110M shapes (gemm_bench --threads 2, weights cold, Zen 5) the
  // panel kernel ran at 237-305 GFLOP/s at M = 16, where the small-M kernel
  // ran at 119-183, and at 326-373 at M = 256, oneDNN at 199-316.
  l->f32_panel_ =
      ActiveSmallGemmIsa() == SmallGemmIsa::kAvx512 && N > 0 && K > 0;
  ASSIGN_OR_RETURN(
      l->w_f32_,
      PageArray<float>::Zeros(l->f32_panel_ ? F32PanelFloats(N, K) : N * K));
  if (l->f32_panel_) {
    RETURN_IF_ERROR(FillF32Panel(N, K, rows, l->w_f32_.data()));
  } else if (N > 0) {
    RETURN_IF_ERROR(rows(0, N, l->w_f32_.data()));
  }
  if (absl::Status s = l->Init(N, K, std::move(bias)); !s.ok()) return s;
  return l;
}

absl::StatusOr<std::unique_ptr<Linear>> Linear::CreatePacked(
    int64_t K, std::vector<PackedPart> parts, std::vector<float> bias) {
  std::unique_ptr<Linear> l(new Linear());
  l->format_ = WeightFormat::kPacked;
  int64_t row = 0;
  for (PackedPart& p : parts) {
    Segment seg{p.type,          row, p.rows, 0, std::move(p.data), false,
                std::move(p.f32)};
    if (p.type == GgmlType::kF32) {
      if (static_cast<int64_t>(seg.f32.size()) != p.rows * K) {
        return absl::InvalidArgumentError(
            absl::StrCat("linear: bad fp32 part of ", p.rows, "x", K));
      }
    } else {
      const quant::QuantType* t = quant::FindQuantType(p.type);
      if (t == nullptr || K % t->block_elems != 0 ||
          static_cast<int64_t>(seg.data.size()) !=
              p.rows * quant::RowBytes(*t, K)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "linear: bad ", GgmlTypeName(p.type), " part of ", p.rows, "x", K));
      }
      seg.row_bytes = quant::RowBytes(*t, K);
      if (quant::InterleaveWanted(K)) {
        quant::InterleaveRows(static_cast<uint32_t>(seg.type), seg.data.data(),
                              seg.rows, K, seg.row_bytes);
        seg.interleaved = true;
      }
      const bool span = quant::ReadsSpanActivations(
          static_cast<uint32_t>(seg.type), seg.interleaved);
      l->span_acts_ |= span;
      l->block_acts_ |= !span;
    }
    row += p.rows;
    l->segments_.push_back(std::move(seg));
  }
  if (absl::Status s = l->Init(row, K, std::move(bias)); !s.ok()) return s;
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
  // Packed matrices and fp32 panels run their own kernel at every M
  // (Forward): no oneDNN primitive, whose warm-up would take a dummy fp32
  // copy of the matrix.
  if (format_ == WeightFormat::kPacked || f32_panel_) return absl::OkStatus();
  auto mm = DnnlMatmulF32::Create(K, N, bias_.empty() ? nullptr : bias_.data());
  if (!mm.ok()) return mm.status();
  dnnl_ = std::move(*mm);
  return absl::OkStatus();
}

int64_t Linear::resident_bytes() const {
  // The values (their mappings add under a page each: base/page_array.h).
  int64_t bytes = w_f32_.size() * 4 + bias_.size() * 4;
  for (const Segment& s : segments_) bytes += s.data.size() + s.f32.size() * 4;
  return bytes;
}

void Linear::DequantizeRow(int64_t row, float* out) const {
  switch (format_) {
    case WeightFormat::kF32:
      if (f32_panel_) {
        F32PanelRow(w_f32_.data(), K_, row, out);
      } else {
        std::memcpy(out, w_f32_.data() + row * K_, K_ * sizeof(float));
      }
      return;
    case WeightFormat::kPacked:
      for (const Segment& s : segments_) {
        if (row < s.first_row || row >= s.first_row + s.rows) continue;
        const int64_t r = row - s.first_row;
        const quant::QuantType* t = quant::FindQuantType(s.type);
        if (s.type == GgmlType::kF32) {
          std::memcpy(out, s.f32.data() + r * K_, K_ * sizeof(float));
        } else if (s.interleaved) {
          uint8_t block[256 / 32 * 34];  // the largest 256-value span (q8_0)
          for (int64_t span = 0; span < K_ / 256; ++span) {
            quant::CopyInterleavedSpan(static_cast<uint32_t>(s.type),
                                       s.data.data(), s.rows, K_, s.row_bytes,
                                       r, span, block);
            t->dequantize_row(block, out + 256 * span, 256);
          }
        } else {
          t->dequantize_row(s.data.data() + r * s.row_bytes, out, K_);
        }
        return;
      }
  }
}

std::string Linear::TypeSummary() const {
  if (format_ == WeightFormat::kF32) return "f32";
  std::string out;
  for (const Segment& s : segments_) {
    const std::string name = GgmlTypeName(s.type);
    if (out == name || absl::EndsWith(out, "+" + name)) continue;
    absl::StrAppend(&out, out.empty() ? "" : "+", name);
  }
  return out;
}

int Linear::Bucket(int64_t M) {
  return std::min<int>(kBuckets - 1,
                       std::bit_width(static_cast<uint64_t>(M)) - 1);
}

void Linear::AddBias(int64_t M, float* y) const {
  if (bias_.empty()) return;
  for (int64_t m = 0; m < M; ++m) AddInPlace(y + m * N_, bias_.data(), N_);
}

quant::QuantizedActs Linear::QuantizeForPacked(const float* x, int64_t M,
                                               LinearScratch* scratch) const {
  // Only the quantizations some segment reads (a Q4_K_M file's matrices
  // need only the span one).
  quant::QuantizedActs acts{nullptr, nullptr, nullptr, nullptr, nullptr};
  if (block_acts_) {
    quant::QuantizeActivations(x, M, K_, scratch->q.data(), scratch->d4.data(),
                               scratch->sum16.data(), scratch->sum32.data(),
                               scratch->zsum32.data());
    acts = {scratch->q.data(), scratch->d4.data(), scratch->sum16.data(),
            scratch->sum32.data(), scratch->zsum32.data()};
  }
  if (span_acts_) {
    quant::QuantizeActivationsPerSpan(
        x, M, K_, scratch->q256.data(), scratch->d256.data(),
        scratch->bsum16.data(), scratch->bsum32.data());
    acts.q256 = scratch->q256.data();
    acts.d256 = scratch->d256.data();
    acts.bsum16 = scratch->bsum16.data();
    acts.bsum32 = scratch->bsum32.data();
  }
  return acts;
}

void Linear::RunPacked(const float* x, int64_t M, float* y,
                       LinearScratch* scratch) const {
  const quant::QuantizedActs acts = QuantizeForPacked(x, M, scratch);
  for (const Segment& s : segments_) {
    if (s.type == GgmlType::kF32) {
      // fp32 rows fused with packed ones (rare): one activation row at a
      // time, so that the kernel writes straight into y's columns and a
      // row's result does not depend on M.
      for (int64_t m = 0; m < M; ++m) {
        SmallGemmF32(x + m * K_, 1, K_, s.f32.data(), s.rows,
                     y + m * N_ + s.first_row);
      }
    } else {
      quant::PackedMatmul(static_cast<uint32_t>(s.type), acts, M, K_,
                          s.data.data(), s.rows, y + s.first_row, N_,
                          scratch->panel_base(), scratch->panel_slots(K_),
                          s.interleaved);
    }
  }
  AddBias(M, y);
}

absl::Status Linear::RunSmall(const float* x, int64_t M, float* y) const {
  SmallGemmF32(x, M, K_, w_f32_.data(), N_, y);
  AddBias(M, y);
  return absl::OkStatus();
}

absl::Status Linear::RunDnnl(const float* x, int64_t M, float* y) const {
  return dnnl_->Run(x, M, w_f32_.data(), y);  // bias fused
}

absl::Status Linear::SetInputRounding(InputRounding rounding) {
  if (format_ != WeightFormat::kF32 && rounding != InputRounding::kNone)
    return absl::InvalidArgumentError("only fp32 matrices round inputs");
  input_rounding_ = rounding;
  return absl::OkStatus();
}

absl::Status Linear::Forward(const float* x, int64_t M, float* y,
                             LinearScratch* scratch) const {
  if (input_rounding_ != InputRounding::kNone) {
    if (M * K_ > scratch->rounded_size)
      return absl::InternalError("scratch too small for rounded inputs");
    float* rounded = scratch->rounded.get();
    if (input_rounding_ == InputRounding::kF16) {
      RoundToF16(x, M * K_, rounded);
    } else {
      RoundToBf16(x, M * K_, rounded);
    }
    x = rounded;
  }
  if (format_ == WeightFormat::kPacked) {
    // One kernel for every M: see quant_kernels.h on batch invariance.
    RunPacked(x, M, y, scratch);
    return absl::OkStatus();
  }
  if (f32_panel_) {
    avx512::F32PanelGemm(x, M, K_, w_f32_.data(), N_, y);
    AddBias(M, y);
    return absl::OkStatus();
  }
  return use_dnnl_[Bucket(M)] ? RunDnnl(x, M, y) : RunSmall(x, M, y);
}

int Linear::MeasuredBuckets(int64_t max_m) {
  int buckets = 1;
  while (buckets < 9 && (int64_t{1} << buckets) <= max_m) ++buckets;
  return buckets;
}

int Linear::FindCrossover(int buckets,
                          absl::FunctionRef<bool(int64_t m)> dnnl_faster) {
  int lo = 0, hi = buckets;  // the crossover is in [lo, hi]
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (dnnl_faster(int64_t{1} << mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

bool Linear::MeasureKernelChoice(int64_t max_m, KernelChoiceCache* cache) {
  // One kernel for every M.
  if (format_ == WeightFormat::kPacked || f32_panel_) return false;
  // Buckets up to M = 256, or to the largest M this matrix will see (the
  // output head runs only on the rows a step samples).
  const int buckets = MeasuredBuckets(max_m);
  const std::string key =
      absl::StrCat("n=", N_, ";k=", K_, ";rounding=",
                   input_rounding_ == InputRounding::kF16    ? "f16"
                   : input_rounding_ == InputRounding::kBF16 ? "bf16"
                                                             : "none",
                   ";buckets=", buckets);
  if (cache != nullptr) {
    if (std::optional<int> crossover = cache->Find(key)) {
      // (Past the buckets timed means the same as at their end.)
      const int from = std::min(*crossover, buckets);
      for (int b = 0; b < kBuckets; ++b) use_dnnl_[b] = b >= from;
      return false;
    }
  }
  const int64_t max_measured = int64_t{1} << (buckets - 1);
  std::vector<float> x(max_measured * K_), y(max_measured * N_);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = 0.01f * static_cast<float>(i % 101) - 0.5f;
  auto time = [&](bool dnnl, int64_t m) {
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      (void)(dnnl ? RunDnnl(x.data(), m, y.data())
                  : RunSmall(x.data(), m, y.data()));
      best = std::min(best, std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - t0)
                                .count());
    }
    return best;
  };
  // The small-M kernel's lead shrinks as M grows (oneDNN's blocking pays off
  // on more rows), so there is one crossover: a binary search finds it in
  // 3-4 timings instead of 9, and skips most of the largest, slowest ones
  // (they were most of the load time).
  const int crossover = FindCrossover(
      buckets, [&](int64_t m) { return time(true, m) < time(false, m); });
  for (int b = 0; b < kBuckets; ++b) use_dnnl_[b] = b >= crossover;
  if (cache != nullptr) cache->Put(key, crossover);
  return true;
}

std::string Linear::KernelChoiceSummary() const {
  if (f32_panel_) return "f32 panels (every M)";
  if (format_ == WeightFormat::kPacked) {
    if (ActiveSmallGemmIsa() != SmallGemmIsa::kAvx512)
      return "packed row dots (every M)";
    if (K_ % 256 != 0) return "packed panel (every M)";
    bool all_tiled = true;
    int direct_rows = 0;  // the most of any tiled segment
    for (const Segment& s : segments_) {
      if (s.type == GgmlType::kF32) continue;
      const uint32_t type = static_cast<uint32_t>(s.type);
      const bool tiled = s.interleaved && quant::TiledType(type);
      all_tiled &= tiled;
      if (tiled)
        direct_rows = std::max(direct_rows, quant::TileDirectRows(type));
    }
    if (all_tiled) {
      return absl::StrCat("packed tiles direct M<=", direct_rows,
                          ", panel above");
    }
    return direct_rows > 0
               ? absl::StrCat("packed direct M<=4 (tiles M<=", direct_rows,
                              "), panel above")
               : "packed direct M<=4, panel above";
  }
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
