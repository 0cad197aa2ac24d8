#pragma once
// The int8 formats of the engine. Weights and activations are both split into
// blocks of 32 values along the reduction dimension, each block with its own
// fp32 scale (the Q8_0 idea, with scales kept apart from the int8 values so
// that rows of int8 stream contiguously). Values lie in [-127, 127], which
// keeps AVX2's 16-bit pair sums (vpmaddubsw) from saturating.

#include <cstdint>

namespace lumen::engine::kernels {

constexpr int kQBlock = 32;

// Quantizes `rows` rows of `cols` floats (cols % 32 == 0):
// q: [rows, cols], scales: [rows, cols / 32], scale = amax / 127.
void QuantizeRowsQ8(const float* x, int64_t rows, int64_t cols, int8_t* q,
                    float* scales);

}  // namespace lumen::engine::kernels
