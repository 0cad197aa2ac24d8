#include "engine/quant/legacy_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/quant/block_common.h"

namespace lumen::engine::quant {

namespace {

// The 32 codes of a 4-bit block, element order.
void Nibbles(const uint8_t* qs, int* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0x0F;
    q[j + 16] = qs[j] >> 4;
  }
}

void PackNibbles(const int* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
}

// The element of largest magnitude, with its sign.
float SignedMax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kLegacyBlock; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// Symmetric 4/5-bit: d = max / -levels/2, codes in [0, levels).
void QuantizeSymmetric(const float* x, int levels, float* d_out, int* q) {
  const float max = SignedMax(x);
  const float d = max / -(levels / 2);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kLegacyBlock; ++j) {
    const int v = static_cast<int>(x[j] * id + (levels / 2 + 0.5f));
    q[j] = std::clamp(v, 0, levels - 1);
  }
  *d_out = d;
}

// Asymmetric 4/5-bit over [min, max].
void QuantizeRange(const float* x, int levels, float* d_out, float* m_out,
                   int* q) {
  float min = x[0], max = x[0];
  for (int j = 1; j < kLegacyBlock; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
  const float d = (max - min) / (levels - 1);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kLegacyBlock; ++j) {
    const int v = static_cast<int>((x[j] - min) * id + 0.5f);
    q[j] = std::clamp(v, 0, levels - 1);
  }
  *d_out = d;
  *m_out = min;
}

uint32_t HighBits(const int* q) {
  uint32_t qh = 0;
  for (int j = 0; j < kLegacyBlock; ++j)
    qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  return qh;
}

void LowNibbles(const int* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
}

}  // namespace

void DequantizeRowQ4_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 18, dst += 32) {
    const float d = Fp16(src);
    int q[32];
    Nibbles(src + 2, q);
    for (int j = 0; j < 32; ++j) dst[j] = d * (q[j] - 8);
  }
}

void DequantizeRowQ4_1(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 20, dst += 32) {
    const float d = Fp16(src), m = Fp16(src + 2);
    int q[32];
    Nibbles(src + 4, q);
    for (int j = 0; j < 32; ++j) dst[j] = d * q[j] + m;
  }
}

void DequantizeRowQ5_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 22, dst += 32) {
    const float d = Fp16(src);
    const uint32_t qh = LoadU32(src + 2);
    int q[32];
    Nibbles(src + 6, q);
    for (int j = 0; j < 32; ++j)
      dst[j] = d * ((q[j] | static_cast<int>(((qh >> j) & 1) << 4)) - 16);
  }
}

void DequantizeRowQ5_1(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 24, dst += 32) {
    const float d = Fp16(src), m = Fp16(src + 2);
    const uint32_t qh = LoadU32(src + 4);
    int q[32];
    Nibbles(src + 8, q);
    for (int j = 0; j < 32; ++j)
      dst[j] = d * (q[j] | static_cast<int>(((qh >> j) & 1) << 4)) + m;
  }
}

void DequantizeRowQ8_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 34, dst += 32) {
    const float d = Fp16(src);
    for (int j = 0; j < 32; ++j) dst[j] = d * static_cast<int8_t>(src[2 + j]);
  }
}

void QuantizeRowQ4_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 32, dst += 18) {
    float d;
    int q[32];
    QuantizeSymmetric(src, 16, &d, q);
    StoreFp16(dst, d);
    PackNibbles(q, dst + 2);
  }
}

void QuantizeRowQ4_1(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 32, dst += 20) {
    float d, m;
    int q[32];
    QuantizeRange(src, 16, &d, &m, q);
    StoreFp16(dst, d);
    StoreFp16(dst + 2, m);
    PackNibbles(q, dst + 4);
  }
}

void QuantizeRowQ5_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 32, dst += 22) {
    float d;
    int q[32];
    QuantizeSymmetric(src, 32, &d, q);
    StoreFp16(dst, d);
    const uint32_t qh = HighBits(q);
    std::memcpy(dst + 2, &qh, 4);
    LowNibbles(q, dst + 6);
  }
}

void QuantizeRowQ5_1(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 32, dst += 24) {
    float d, m;
    int q[32];
    QuantizeRange(src, 32, &d, &m, q);
    StoreFp16(dst, d);
    StoreFp16(dst + 2, m);
    const uint32_t qh = HighBits(q);
    std::memcpy(dst + 4, &qh, 4);
    LowNibbles(q, dst + 8);
  }
}

void QuantizeRowQ8_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kLegacyBlock; ++b, src += 32, dst += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(dst, d);
    for (int j = 0; j < 32; ++j) {
      dst[2 + j] =
          static_cast<uint8_t>(static_cast<int8_t>(std::lround(src[j] * id)));
    }
  }
}

}  // namespace lumen::engine::quant
