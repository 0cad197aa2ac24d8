#include "tools/lumen/roofline.h"

#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include "engine/kernels/small_gemm_isa.h"

namespace lumen::tools {

namespace {
double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}
}  // namespace

double MeasureReadBandwidthGBs() {
  const int64_t n = (int64_t{512} << 20) / sizeof(float);
  std::unique_ptr<float[]> buf(new float[n]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i & 1023) * 0.5f;
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    float total = 0.0f;
#pragma omp parallel reduction(+ : total)
    {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(buf.get() + i + 512),
                     _MM_HINT_T0);
        a0 = _mm256_add_ps(a0, _mm256_load_ps(buf.get() + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(buf.get() + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(buf.get() + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(buf.get() + i + 24));
      }
      __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
      float lanes[8];
      _mm256_storeu_ps(lanes, s);
      for (float l : lanes) total += l;
    }
    sink = total;
    best = std::max(best, n * sizeof(float) / Seconds(t0) / 1e9);
  }
  (void)sink;
  return best;
}

double RunAvx512FmaChains(int64_t iters, int* threads_out);

double MeasurePeakGflops() {
  constexpr int64_t kIters = 20'000'000;
  double best = 0.0;
  // The engine's kernels use 512-bit FMAs where the CPU has them (see
  // engine/kernels/small_gemm_isa.h), and so does oneDNN: measure that peak.
  if (engine::kernels::ActiveSmallGemmIsa() ==
      engine::kernels::SmallGemmIsa::kAvx512) {
    for (int rep = 0; rep < 3; ++rep) {
      int threads = 1;
      auto t0 = std::chrono::steady_clock::now();
      const double flops = RunAvx512FmaChains(kIters, &threads);
      best = std::max(best, flops / Seconds(t0) / 1e9);
    }
    return best;
  }
  for (int rep = 0; rep < 3; ++rep) {
    int threads = 1;
    auto t0 = std::chrono::steady_clock::now();
    float total = 0.0f;
#pragma omp parallel reduction(+ : total)
    {
#pragma omp single
      threads = omp_get_num_threads();
      __m256 acc[12];
      for (int k = 0; k < 12; ++k) acc[k] = _mm256_set1_ps(0.001f * k);
      const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
      for (int64_t i = 0; i < kIters / 12; ++i) {
        for (int k = 0; k < 12; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
      }
      float lanes[8];
      __m256 s = acc[0];
      for (int k = 1; k < 12; ++k) s = _mm256_add_ps(s, acc[k]);
      _mm256_storeu_ps(lanes, s);
      for (float l : lanes) total += l;
    }
    volatile float sink = total;
    (void)sink;
    const double flops = double(threads) * (kIters / 12) * 12 * 8 * 2;
    best = std::max(best, flops / Seconds(t0) / 1e9);
  }
  return best;
}

}  // namespace lumen::tools
