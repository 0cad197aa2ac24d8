// The FP32 FMA peak with 512-bit vectors (see roofline.h). Compiled with
// AVX-512 enabled and called only after the CPU check, so it includes no C++
// library headers whose inline functions could leak AVX-512 code elsewhere.

#include <immintrin.h>
#include <omp.h>

#include <cstdint>

namespace lumen::tools {

// FLOPs done by all threads in `iters` rounds of 12 independent 16-lane FMA
// chains; `threads_out` receives the thread count.
double RunAvx512FmaChains(int64_t iters, int* threads_out) {
  float total = 0.0f;
  int threads = 1;
#pragma omp parallel reduction(+ : total)
  {
#pragma omp single
    threads = omp_get_num_threads();
    __m512 acc[12];
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_ps(0.001f * k);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters / 12; ++i) {
      for (int k = 0; k < 12; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
    }
    __m512 s = acc[0];
    for (int k = 1; k < 12; ++k) s = _mm512_add_ps(s, acc[k]);
    total += _mm512_reduce_add_ps(s);
  }
  volatile float sink = total;
  (void)sink;
  *threads_out = threads;
  return double(threads) * (iters / 12) * 12 * 16 * 2;
}

}  // namespace lumen::tools
