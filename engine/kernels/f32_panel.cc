#include "engine/kernels/f32_panel.h"

namespace lumen::engine::kernels {

int64_t F32PanelFloats(int64_t N, int64_t K) { return (N + 31) / 32 * 32 * K; }

void PackF32Panel(const float* w, int64_t N, int64_t K, float* panel) {
  const int64_t tiles = F32PanelFloats(N, K) / (16 * K);
  // Each tile written in order, its 16 source rows read side by side.
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    float* out = panel + t * K * 16;
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t r = 0; r < 16; ++r) {
        const int64_t n = t * 16 + r;
        out[k * 16 + r] = n < N ? w[n * K + k] : 0.0f;
      }
    }
  }
}

void F32PanelRow(const float* panel, int64_t K, int64_t n, float* out) {
  const float* tile = panel + (n / 16) * K * 16 + n % 16;
  for (int64_t k = 0; k < K; ++k) out[k] = tile[k * 16];
}

}  // namespace lumen::engine::kernels
