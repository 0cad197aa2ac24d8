#pragma once
// Decoders of the k-quant super-blocks (k_quants.h); interface as in
// legacy_simd.h. Scales unpack once per super-block, codes per 32-element
// chunk c (0..7).

#include "engine/quant/block_common.h"
#include "engine/quant/simd_common.h"

namespace lumen::engine::quant {
namespace {

inline __m256i Load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Q4_K/Q5_K: 8 six-bit scales and mins -> per 16 elements.
inline void ScalesQ45(const uint8_t* b, float* scale, float* offset) {
  const float d = Fp16(b), dmin = Fp16(b + 2);
  const uint8_t* p = b + 4;
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    if (j < 4) {
      sc = p[j] & 63;
      mn = p[j + 4] & 63;
    } else {
      sc = (p[j + 4] & 0x0F) | ((p[j - 4] >> 6) << 4);
      mn = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
    }
    scale[2 * j] = scale[2 * j + 1] = d * sc;
    offset[2 * j] = offset[2 * j + 1] = -dmin * mn;
  }
}

struct DecodeQ2_K {
  static constexpr int kElems = 256, kBytes = 84;
  static constexpr bool kWideCodes = false;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    const float d = Fp16(b + 80), dmin = Fp16(b + 82);
    for (int j = 0; j < 16; ++j) {
      scale[j] = d * (b[j] & 0x0F);
      offset[j] = -dmin * (b[j] >> 4);
    }
  }
  static __m256i Codes(const uint8_t* b, int c) {
    const __m256i q = ShiftRight16(Load256(b + 16 + 32 * (c / 4)), 2 * (c % 4));
    return _mm256_and_si256(q, _mm256_set1_epi8(3));
  }
};

struct DecodeQ3_K {
  static constexpr int kElems = 256, kBytes = 110;
  static constexpr bool kWideCodes = false;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    const float d = Fp16(b + 108);
    const uint8_t* p = b + 96;
    for (int j = 0; j < 16; ++j) {
      const int low = j < 8 ? p[j] & 0x0F : p[j - 8] >> 4;
      const int high = (p[8 + j % 4] >> (2 * (j / 4))) & 3;
      const float s = d * ((low | (high << 4)) - 32);
      scale[j] = s;
      offset[j] = -4.0f * s;
    }
  }
  static __m256i Codes(const uint8_t* b, int c) {
    const __m256i low = _mm256_and_si256(
        ShiftRight16(Load256(b + 32 + 32 * (c / 4)), 2 * (c % 4)),
        _mm256_set1_epi8(3));
    return _mm256_or_si256(low, ByteBitFlag(Load256(b), c, 4));
  }
};

struct DecodeQ4_K {
  static constexpr int kElems = 256, kBytes = 144;
  static constexpr bool kWideCodes = false;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    ScalesQ45(b, scale, offset);
  }
  static __m256i Codes(const uint8_t* b, int c) {
    const __m256i v = ShiftRight16(Load256(b + 16 + 32 * (c / 2)), 4 * (c % 2));
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
  }
};

struct DecodeQ5_K {
  static constexpr int kElems = 256, kBytes = 176;
  static constexpr bool kWideCodes = false;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    ScalesQ45(b, scale, offset);
  }
  static __m256i Codes(const uint8_t* b, int c) {
    const __m256i v = ShiftRight16(Load256(b + 48 + 32 * (c / 2)), 4 * (c % 2));
    return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi8(0x0F)),
                           ByteBitFlag(Load256(b + 16), c, 0x10));
  }
};

struct DecodeQ6_K {
  static constexpr int kElems = 256, kBytes = 210;
  static constexpr bool kWideCodes = false;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    const float d = Fp16(b + 208);
    for (int j = 0; j < 16; ++j) {
      const float s = d * static_cast<int8_t>(b[192 + j]);
      scale[j] = s;
      offset[j] = -32.0f * s;
    }
  }
  static __m256i Codes(const uint8_t* b, int c) {
    const int h = c / 4, k = c % 4;
    const __m256i low = _mm256_and_si256(
        ShiftRight16(Load256(b + 64 * h + 32 * (k % 2)), k >= 2 ? 4 : 0),
        _mm256_set1_epi8(0x0F));
    const __m256i high = _mm256_and_si256(
        ShiftRight16(Load256(b + 128 + 32 * h), 2 * k), _mm256_set1_epi8(3));
    return _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
  }
};

}  // namespace
}  // namespace lumen::engine::quant
