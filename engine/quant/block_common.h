#pragma once
// Small helpers shared by the block formats: fp16 scalars (F16C, part of the
// x86-64-v3 baseline) and unaligned little-endian loads. No C++ library
// headers: the AVX-512 kernels include this file too (see gemv_avx512.cc).

#include <immintrin.h>

#include <cstdint>

namespace lumen::engine::quant {
namespace {

inline float Fp16(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline void StoreFp16(uint8_t* p, float f) {
  const uint16_t h = _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
  __builtin_memcpy(p, &h, 2);
}

// The value a float takes after a round trip through fp16.
inline float RoundFp16(float f) {
  return _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  __builtin_memcpy(&v, p, 2);
  return v;
}

}  // namespace
}  // namespace lumen::engine::quant
