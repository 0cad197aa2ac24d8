#pragma once
// Decoders of the legacy blocks (legacy_quants.h) for the kernels. Every
// decoder presents a block as unsigned 8-bit codes with, per 16 elements, a
// scale and an offset: w = scale * code + offset. The kernels multiply the
// codes with int8 activations exactly and apply scales in fp32, and offsets
// in fp32 or, where the offset is a fixed code (gemm_avx512.cc's kZeroShiftOf,
// AVX-512), in the integer sums.
//
//   kElems, kBytes: block geometry; kWideCodes: codes may exceed 63 (the
//   AVX2 kernels then use signed values code - 128 instead).
//   Scales(block, scale[kElems/16], offset[kElems/16]);
//   Codes(block, chunk) -> the 32 codes of elements 32 chunk ..
//
// Internal linkage, no C++ library headers (see simd_common.h).

#include "engine/quant/block_common.h"
#include "engine/quant/simd_common.h"

namespace lumen::engine::quant {
namespace {

struct DecodeQ4_0 {
  static constexpr int kElems = 32, kBytes = 18;
  static constexpr bool kWideCodes = false;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    const float d = Fp16(b);
    scale[0] = scale[1] = d;
    offset[0] = offset[1] = -8.0f * d;
  }
  static __m256i Codes(const uint8_t* b, int) { return Nibbles32(b + 2); }
};

struct DecodeQ4_1 {
  static constexpr int kElems = 32, kBytes = 20;
  static constexpr bool kWideCodes = false;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    scale[0] = scale[1] = Fp16(b);
    offset[0] = offset[1] = Fp16(b + 2);
  }
  static __m256i Codes(const uint8_t* b, int) { return Nibbles32(b + 4); }
};

struct DecodeQ5_0 {
  static constexpr int kElems = 32, kBytes = 22;
  static constexpr bool kWideCodes = false;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    const float d = Fp16(b);
    scale[0] = scale[1] = d;
    offset[0] = offset[1] = -16.0f * d;
  }
  static __m256i Codes(const uint8_t* b, int) {
    const __m256i high =
        _mm256_and_si256(BitsToBytes(LoadU32(b + 2)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(Nibbles32(b + 6), high);
  }
};

struct DecodeQ5_1 {
  static constexpr int kElems = 32, kBytes = 24;
  static constexpr bool kWideCodes = false;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    scale[0] = scale[1] = Fp16(b);
    offset[0] = offset[1] = Fp16(b + 2);
  }
  static __m256i Codes(const uint8_t* b, int) {
    const __m256i high =
        _mm256_and_si256(BitsToBytes(LoadU32(b + 4)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(Nibbles32(b + 8), high);
  }
};

// Codes are the int8 values + 128.
struct DecodeQ8_0 {
  static constexpr int kElems = 32, kBytes = 34;
  static constexpr bool kWideCodes = true;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    const float d = Fp16(b);
    scale[0] = scale[1] = d;
    offset[0] = offset[1] = -128.0f * d;
  }
  static __m256i Codes(const uint8_t* b, int) {
    const __m256i v =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
    return _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80)));
  }
};

}  // namespace
}  // namespace lumen::engine::quant
