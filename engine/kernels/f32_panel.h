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
// The weights are written straight from their source into the panel,
// tile by tile on every thread: no row-major copy of the matrix is made.

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace lumen::engine::kernels {

// Writes rows [first, first + count) of an N x K fp32 matrix, row-major,
// to out. Called from several threads at once, for disjoint rows.
using F32RowSource =
    absl::FunctionRef<absl::Status(int64_t first, int64_t count, float* out)>;

// Floats of the panel layout of an N x K matrix.
int64_t F32PanelFloats(int64_t N, int64_t K);
// N, K > 0; panel: F32PanelFloats(N, K) floats. Fills it with the panel of
// the matrix `rows` gives (its padding rows zero), on the calling thread's
// OpenMP team. An error of `rows` is returned (when several tiles fail, the
// first one of the lowest-numbered thread that had one), the panel then only
// partly filled.
absl::Status FillF32Panel(int64_t N, int64_t K, F32RowSource rows,
                          float* panel);
// Row n of the matrix ([K] into out).
void F32PanelRow(const float* panel, int64_t K, int64_t n, float* out);

namespace avx512 {
// x: [M, K], y: [M, N]; panel 64-byte aligned. The CPU must have AVX-512
// (small_gemm_isa.h).
void F32PanelGemm(const float* x, int64_t M, int64_t K, const float* panel,
                  int64_t N, float* y);
}  // namespace avx512

}  // namespace lumen::engine::kernels
