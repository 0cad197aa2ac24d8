#include "engine/kernels/f32_panel.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace lumen::engine::kernels {

int64_t F32PanelFloats(int64_t N, int64_t K) { return (N + 47) / 48 * 48 * K; }

absl::Status FillF32Panel(int64_t N, int64_t K, F32RowSource rows,
                          float* panel) {
  const int64_t row_tiles = (N + 15) / 16;
  // The padding tiles past the rows: zeros.
  std::memset(panel + row_tiles * 16 * K, 0,
              (F32PanelFloats(N, K) - row_tiles * 16 * K) * sizeof(float));
  // One slot per thread, no lock: a critical section here was reported as a
  // double lock by ThreadSanitizer's OpenMP support (libarcher).
  std::vector<absl::Status> statuses(omp_get_max_threads());
#pragma omp parallel
  {
    // One tile's rows, row-major: read from the source once, in cache for
    // the transpose.
    std::vector<float> tile_rows(16 * K);
    absl::Status& mine = statuses[omp_get_thread_num()];
#pragma omp for schedule(static)
    for (int64_t t = 0; t < row_tiles; ++t) {
      if (!mine.ok()) continue;
      const int64_t count = std::min<int64_t>(16, N - 16 * t);
      mine = rows(16 * t, count, tile_rows.data());
      std::fill(tile_rows.begin() + count * K, tile_rows.end(), 0.0f);
      float* tile = panel + t * 16 * K;  // [K][16]
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t r = 0; r < 16; ++r)
          tile[k * 16 + r] = tile_rows[r * K + k];
      }
    }
  }
  for (absl::Status& s : statuses) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

void F32PanelRow(const float* panel, int64_t K, int64_t n, float* out) {
  const float* tile = panel + (n / 16) * K * 16 + n % 16;
  for (int64_t k = 0; k < K; ++k) out[k] = tile[k * 16];
}

}  // namespace lumen::engine::kernels
