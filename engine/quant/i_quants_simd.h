#pragma once
// Decoders of the IQ4 blocks (i_quants.h); interface as in legacy_simd.h.
// Codes are the table levels + 128, looked up with a byte shuffle.

#include "engine/quant/block_common.h"
#include "engine/quant/simd_common.h"

namespace lumen::engine::quant {
namespace {

// kIq4Levels + 128 in both 128-bit lanes.
inline __m256i Iq4CodeTable() {
  return _mm256_broadcastsi128_si256(_mm_setr_epi8(
      static_cast<char>(1), static_cast<char>(24), static_cast<char>(45),
      static_cast<char>(63), static_cast<char>(79), static_cast<char>(93),
      static_cast<char>(106), static_cast<char>(118), static_cast<char>(129),
      static_cast<char>(141), static_cast<char>(153), static_cast<char>(166),
      static_cast<char>(181), static_cast<char>(197), static_cast<char>(217),
      static_cast<char>(241)));
}

struct DecodeIQ4_NL {
  static constexpr int kElems = 32, kBytes = 18;
  static constexpr bool kWideCodes = true;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    const float d = Fp16(b);
    scale[0] = scale[1] = d;
    offset[0] = offset[1] = -128.0f * d;
  }
  static __m256i Codes(const uint8_t* b, int) {
    return _mm256_shuffle_epi8(Iq4CodeTable(), Nibbles32(b + 2));
  }
};

struct DecodeIQ4_XS {
  static constexpr int kElems = 256, kBytes = 136;
  static constexpr bool kWideCodes = true;
  static void Scales(const uint8_t* b, float* scale, float* offset) {
    const float d = Fp16(b);
    const uint16_t scales_h = LoadU16(b + 2);
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F) |
                     (((scales_h >> (2 * ib)) & 3) << 4);
      const float s = d * (ls - 32);
      scale[2 * ib] = scale[2 * ib + 1] = s;
      offset[2 * ib] = offset[2 * ib + 1] = -128.0f * s;
    }
  }
  static __m256i Codes(const uint8_t* b, int c) {
    return _mm256_shuffle_epi8(Iq4CodeTable(), Nibbles32(b + 8 + 16 * c));
  }
};

}  // namespace
}  // namespace lumen::engine::quant
