#pragma once
// Element-wise and row-wise fp32 kernels of the transformer step (AVX2/FMA),
// each over a batch of rows. Callers own every buffer; nothing allocates.

#include <cstdint>

namespace lumen::engine::kernels {

// The sum of x[i]^2 over n values, accumulated in double (n can be
// thousands) in 16 lanes, then a scalar tail.
double SumOfSquares(const float* x, int64_t n);

// out[r] = x[r] / rms(x[r]) * weight, rms = sqrt(mean(x^2) + eps).
// x, out: [rows, dim] (may alias); weight: [dim].
void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim,
             float eps, float* out);

// How RoPE pairs the dimensions of a head.
enum class RopeStyle {
  kAdjacent,  // (0,1), (2,3), ...: llama GGUFs (ggml's "norm" mode)
  kHalves,    // (i, i + rope_dim/2): qwen2 (ggml's "neox" mode)
};

// The rotation of each row's position, computed once per step and shared by
// every layer with the same RoPE: for pair i, theta = position *
// frequency[i] (radians per position: the base, frequency factors and
// context scaling folded in, see engine/model/rope_frequencies.h);
// cos_out[r, i] = mscale * cos(theta), sin_out[r, i] = mscale * sin(theta).
// frequency: [half]; cos_out, sin_out: [rows, half].
void RopeAngles(const int32_t* positions, int64_t rows, const double* frequency,
                int64_t half, float mscale, float* cos_out, float* sin_out);

// Rotates the first `rope_dim` dimensions of every head of every row in
// place by the angles of RopeAngles. Row r starts at x + r * row_stride and
// holds n_heads * head_dim values.
void Rope(float* x, int64_t row_stride, const float* cos_table,
          const float* sin_table, int64_t rows, int64_t n_heads,
          int64_t head_dim, int64_t rope_dim, RopeStyle style);

// out[r, i] = silu(gate_up[r, i]) * gate_up[r, ff + i].
// gate_up: [rows, 2 * ff]; out: [rows, ff].
void SiluMul(const float* gate_up, int64_t rows, int64_t ff, float* out);

// out[r, i] = gelu_tanh(gate_up[r, i]) * gate_up[r, ff + i], where
// gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))).
// gate_up: [rows, 2 * ff]; out: [rows, ff].
void GeluTanhMul(const float* gate_up, int64_t rows, int64_t ff, float* out);

// RMS-normalizes every head of every row in place: the n_heads * head_dim
// values of row r start at x + r * row_stride, and each head becomes
// head / rms(head) * weight. weight: [head_dim].
void HeadRmsNorm(float* x, int64_t row_stride, int64_t rows, int64_t n_heads,
                 int64_t head_dim, const float* weight, float eps);

// x[i] *= a for n elements.
void ScaleInPlace(float* x, float a, int64_t n);

// x[i] += y[i] for n elements.
void AddInPlace(float* x, const float* y, int64_t n);

// Dot product of two fp32 vectors of length n.
float Dot(const float* a, const float* b, int64_t n);

// y[i] += a * x[i].
void Axpy(float a, const float* x, float* y, int64_t n);

// The same with b (x) given as fp16 bits.
float Dot(const float* a, const uint16_t* b, int64_t n);
void Axpy(float a, const uint16_t* x, float* y, int64_t n);

// fp32 <-> fp16 bits (IEEE binary16, round to nearest even), n elements.
void FloatsToHalves(const float* x, uint16_t* out, int64_t n);
void HalvesToFloats(const uint16_t* x, float* out, int64_t n);

// out[i] = x[i] rounded to the nearest F16 (BF16) value, ties to even, as
// ggml converts activations for F16 (BF16) weights. x, out: [n] (may
// alias).
void RoundToF16(const float* x, int64_t n, float* out);
void RoundToBf16(const float* x, int64_t n, float* out);

}  // namespace lumen::engine::kernels
