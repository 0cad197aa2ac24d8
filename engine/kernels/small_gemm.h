#pragma once
// Matrix products for few rows of activations (decode, small batches), where
// oneDNN 2.6 on AVX2 is weak: y[M,N] = x[M,K] * W[N,K]^T with W in GGUF's
// [out, in] layout. Rows of W are tiled so each tile is read from memory
// once and reused from cache for every activation row. Threads split N.

#include <cstdint>

namespace lumen::engine::kernels {

// fp32 weights. x: [M, K], w: [N, K], y: [M, N].
void SmallGemmF32(const float* x, int64_t M, int64_t K, const float* w,
                  int64_t N, float* y);

}  // namespace lumen::engine::kernels
