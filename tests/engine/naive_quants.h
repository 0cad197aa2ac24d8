#pragma once
// Test-side reference for GGUF tensor encodings, written from ggml's block
// layout documentation independently of engine/quant: element by element,
// fp16 decoded by bit manipulation, results in double. Also the activation
// quantization the packed kernels are specified against.

#include <cstdint>
#include <vector>

#include "engine/gguf/ggml_type.h"

namespace lumen::testing {

// The n values (a whole number of blocks) of a tensor of `type` starting at
// `data`. Empty for types this reference does not know.
std::vector<double> NaiveDequantize(engine::GgmlType type, const uint8_t* data,
                                    int64_t n);

// Elements per block and bytes per block of the types above.
int NaiveBlockElems(engine::GgmlType type);
int NaiveBlockBytes(engine::GgmlType type);

// Per 32 values: q = round-half-even(x * 127 / max|x|), d = max|x| / 127
// rounded to fp16; returns d * q, the values the packed kernels (all but
// the Q4_K/Q6_K tile kernel) multiply the weights with.
std::vector<double> NaiveQuantizeActivations(const std::vector<float>& x);

// Per 256 values (the Q4_K/Q6_K tile kernel's activations): q =
// round-half-even(x * (127 / max|x|)) in fp32, d = max|x| / 127 in fp32;
// returns d * q.
std::vector<double> NaiveQuantizeActivationsPerSpan(
    const std::vector<float>& x);

}  // namespace lumen::testing
