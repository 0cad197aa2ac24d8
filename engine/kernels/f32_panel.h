#pragma once
// fp32 weights in panels, for the AVX-512 fp32 GEMM: y[M,N] = x[M,K] *
// W[N,K]^T with W rewritten at load so that each tile of 16 rows is [K][16]
// (column k of the 16 rows in one 64-byte line). A register then holds 16
// outputs and every product is one broadcast FMA: no horizontal sums (the
// small-M row dots' cost) and no oneDNN. The same kernel runs at every M,
// and each output chains its FMAs over k in order, so a row's result does
// not depend on how many rows share the step. The kernel runs 3 tiles at a
// time (48 outputs), so N is padded to a multiple of 48 with zero rows.
//
// A tile's panel takes exactly the floats of its 16 rows in row-major
// order, so the weights are rewritten in place, tile by tile.

#include <cstdint>

namespace lumen::engine::kernels {

// Floats of the panel layout of an N x K matrix.
int64_t F32PanelFloats(int64_t N, int64_t K);
// Floats a buffer needs to hold the panel 64-byte aligned wherever it
// starts (a float-aligned start is at most 15 floats short of a line).
int64_t F32PanelCapacity(int64_t N, int64_t K);
// N, K > 0. `data` holds an N x K row-major matrix at data[0, N * K) and has
// room for F32PanelCapacity(N, K) floats. Rewrites it as a panel starting at
// the first 64-byte aligned float of `data`, which it returns the offset of.
int64_t PackF32PanelInPlace(float* data, int64_t N, int64_t K);
// Row n of the matrix ([K] into out).
void F32PanelRow(const float* panel, int64_t K, int64_t n, float* out);

namespace avx512 {
// x: [M, K], y: [M, N]; panel 64-byte aligned. The CPU must have AVX-512
// (small_gemm_isa.h).
void F32PanelGemm(const float* x, int64_t M, int64_t K, const float* panel,
                  int64_t N, float* y);
}  // namespace avx512

}  // namespace lumen::engine::kernels
