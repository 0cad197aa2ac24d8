#pragma once
// fp32 weights in panels, for the AVX-512 fp32 GEMM: y[M,N] = x[M,K] *
// W[N,K]^T with W rewritten at load so that each tile of 16 rows is [K][16]
// (column k of the 16 rows in one 64-byte line). A register then holds 16
// outputs and every product is one broadcast FMA: no horizontal sums (the
// small-M row dots' cost) and no oneDNN. The same kernel runs at every M,
// and each output chains its FMAs over k in order, so a row's result does
// not depend on how many rows share the step. Tiles pair up (32 outputs per
// pass), so N is padded to a multiple of 32 with zero rows.

#include <cstdint>

namespace lumen::engine::kernels {

// Floats of the panel layout of an N x K matrix.
int64_t F32PanelFloats(int64_t N, int64_t K);
// w: [N, K] row-major into panel (F32PanelFloats(N, K) floats).
void PackF32Panel(const float* w, int64_t N, int64_t K, float* panel);
// Row n of the matrix ([K] into out).
void F32PanelRow(const float* panel, int64_t K, int64_t n, float* out);

namespace avx512 {
// x: [M, K], y: [M, N]. The CPU must have AVX-512 (small_gemm_isa.h).
void F32PanelGemm(const float* x, int64_t M, int64_t K, const float* panel,
                  int64_t N, float* y);
}  // namespace avx512

}  // namespace lumen::engine::kernels
