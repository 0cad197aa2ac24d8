// gemm_bench: GFLOP/s of the engine's matrix kernels (AVX2 small-M fp32 and
// int8, oneDNN fp32) on the shapes of the 110M synth model, with weights cold
// as in a real step (each call uses the next of 12 copies, like 12 layers).
//
//   build/bin/gemm_bench [--threads 2] [--reps 20]

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "base/flags.h"
#include "engine/kernels/dnnl_matmul.h"
#include "engine/kernels/quantize.h"
#include "engine/kernels/small_gemm.h"

namespace {

using namespace lumen::engine::kernels;
using Clock = std::chrono::steady_clock;

struct Shape {
  const char* name;
  int64_t N, K;
};

}  // namespace

int main(int argc, char** argv) {
  int64_t threads = 2, reps = 20;
  lumen::FlagSet flags("gemm_bench [--threads N] [--reps R]");
  flags.Int("threads", &threads, "OpenMP threads");
  flags.Int("reps", &reps, "calls per measurement (each on the next layer)");
  if (auto s = flags.Parse(std::vector<std::string>(argv + 1, argv + argc));
      !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 2;
  }
  omp_set_num_threads(static_cast<int>(threads));
  const int kLayers = getenv("GEMM_HOT") ? 1 : 12;
  const Shape shapes[] = {{"qkv", 2304, 768},
                          {"wo", 768, 768},
                          {"gate_up", 4096, 768},
                          {"down", 768, 2048}};
  const int64_t ms[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::printf("%-8s %4s %14s %14s %14s %14s   (GFLOP/s, weights cold)\n",
              "shape", "M", "small f32", "small int8", "oneDNN f32",
              "int8 deq+dnnl");
  for (const Shape& s : shapes) {
    std::vector<std::vector<float>> w(kLayers);
    std::vector<std::vector<int8_t>> wq(kLayers);
    std::vector<std::vector<float>> ws(kLayers);
    for (int l = 0; l < kLayers; ++l) {
      w[l].resize(s.N * s.K);
      for (float& v : w[l]) v = normal(rng);
      wq[l].resize(s.N * s.K);
      ws[l].resize(s.N * s.K / kQBlock);
      QuantizeRowsQ8(w[l].data(), s.N, s.K, wq[l].data(), ws[l].data());
    }
    auto dnnl = DnnlMatmulF32::Create(s.K, s.N, nullptr);
    if (!dnnl.ok()) return 1;
    std::vector<float> x(256 * s.K), y(256 * s.N), wf(s.N * s.K);
    for (float& v : x) v = normal(rng) * 50;
    std::vector<int8_t> xq(256 * s.K);
    std::vector<float> xs(256 * s.K / kQBlock);
    for (int64_t M : ms) {
      auto measure = [&](auto&& call) {
        for (int l = 0; l < kLayers; ++l) call(l);  // warm-up
        const auto t0 = Clock::now();
        for (int64_t r = 0; r < reps; ++r) call(static_cast<int>(r % kLayers));
        const double sec =
            std::chrono::duration<double>(Clock::now() - t0).count() / reps;
        return 2.0 * M * s.N * s.K / sec / 1e9;
      };
      const double f32 = measure([&](int l) {
        SmallGemmF32(x.data(), M, s.K, w[l].data(), s.N, y.data());
      });
      const double q8 = measure([&](int l) {
        QuantizeRowsQ8(x.data(), M, s.K, xq.data(), xs.data());
        SmallGemmQ8(xq.data(), xs.data(), M, s.K, wq[l].data(), ws[l].data(),
                    s.N, y.data());
      });
      const double dn = measure([&](int l) {
        (void)(*dnnl)->Run(x.data(), M, w[l].data(), y.data());
      });
      // int8 weights at large M: dequantize, then oneDNN fp32 (Linear's path).
      const double dq = measure([&](int l) {
        const int8_t* q = wq[l].data();
        const float* sc = ws[l].data();
        float* out = wf.data();
        const int64_t blocks = s.N * s.K / kQBlock;
#pragma omp parallel for schedule(static)
        for (int64_t b = 0; b < blocks; ++b) {
          for (int i = 0; i < kQBlock; ++i)
            out[b * kQBlock + i] = sc[b] * q[b * kQBlock + i];
        }
        (void)(*dnnl)->Run(x.data(), M, wf.data(), y.data());
      });
      std::printf("%-8s %4lld %14.1f %14.1f %14.1f %14.1f\n", s.name,
                  (long long)M, f32, q8, dn, dq);
    }
  }
  return 0;
}
