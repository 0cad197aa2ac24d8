#include "engine/kernels/f32_panel.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace lumen::engine::kernels {

int64_t F32PanelFloats(int64_t N, int64_t K) { return (N + 47) / 48 * 48 * K; }

int64_t F32PanelCapacity(int64_t N, int64_t K) {
  return F32PanelFloats(N, K) + 15;
}

int64_t PackF32PanelInPlace(float* data, int64_t N, int64_t K) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(data);
  const int64_t offset = static_cast<int64_t>((64 - address % 64) % 64 / 4);
  const int64_t floats = F32PanelFloats(N, K);
  std::memmove(data + offset, data, N * K * sizeof(float));
  float* panel = data + offset;
  // Past the rows: the padding tiles' zeros.
  std::memset(panel + N * K, 0, (floats - N * K) * sizeof(float));
  const int64_t tiles = (N + 47) / 48 * 3;
#pragma omp parallel
  {
    std::vector<float> rows(16 * K);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      float* tile = panel + t * 16 * K;  // rows 16t.. in row-major order
      std::memcpy(rows.data(), tile, 16 * K * sizeof(float));
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t r = 0; r < 16; ++r) tile[k * 16 + r] = rows[r * K + k];
      }
    }
  }
  return offset;
}

void F32PanelRow(const float* panel, int64_t K, int64_t n, float* out) {
  const float* tile = panel + (n / 16) * K * 16 + n % 16;
  for (int64_t k = 0; k < K; ++k) out[k] = tile[k * 16];
}

}  // namespace lumen::engine::kernels
