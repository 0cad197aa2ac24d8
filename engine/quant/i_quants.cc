#include "engine/quant/i_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/quant/block_common.h"

namespace lumen::engine::quant {

namespace {

// Index of the table level nearest to v.
int NearestLevel(float v) {
  int best = 0;
  float best_d = std::fabs(v - kIq4Levels[0]);
  for (int i = 1; i < 16; ++i) {
    const float d = std::fabs(v - kIq4Levels[i]);
    if (d < best_d) {
      best_d = d;
      best = i;
    }
  }
  return best;
}

// The scale for 32 values that minimizes sum x^2 (x - d level)^2 over
// candidate inverse scales around -127 / max (the extreme value mapped on
// either end of the table).
float FitLevels(const float* x, int* idx) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < 1e-30f) {
    for (int j = 0; j < 32; ++j) idx[j] = NearestLevel(0.0f);
    return 0.0f;
  }
  double best_score = -1;
  float best_d = 0;
  int cand[32];
  for (int step = -9; step <= 9; ++step) {
    for (float end : {static_cast<float>(kIq4Levels[0]),
                      static_cast<float>(kIq4Levels[15])}) {
      const float id = (end + 0.05f * step * std::fabs(end)) / max;
      double sumqx = 0, sumq2 = 0;
      for (int j = 0; j < 32; ++j) {
        cand[j] = NearestLevel(id * x[j]);
        const double w = x[j] * x[j];
        const double q = kIq4Levels[cand[j]];
        sumqx += w * q * x[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx / sumq2 > best_score) {
        best_score = sumqx * sumqx / sumq2;
        best_d = static_cast<float>(sumqx / sumq2);
        std::copy(cand, cand + 32, idx);
      }
    }
  }
  return best_d;
}

void PackCodes(const int* idx, uint8_t* qs) {
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>(idx[j] | (idx[j + 16] << 4));
}

void Requantize(const float* x, float d, int* idx) {
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < 32; ++j) idx[j] = NearestLevel(x[j] * id);
}

}  // namespace

void DequantizeRowIQ4_NL(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 18, dst += 32) {
    const float d = Fp16(src);
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * kIq4Levels[src[2 + j] & 0x0F];
      dst[j + 16] = d * kIq4Levels[src[2 + j] >> 4];
    }
  }
}

void DequantizeRowIQ4_XS(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 136, dst += 256) {
    const float d = Fp16(src);
    const uint16_t scales_h = LoadU16(src + 2);
    const uint8_t* scales_l = src + 4;
    const uint8_t* qs = src + 8;
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) |
                     (((scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * (ls - 32);
      for (int j = 0; j < 16; ++j) {
        dst[32 * ib + j] = dl * kIq4Levels[qs[16 * ib + j] & 0x0F];
        dst[32 * ib + j + 16] = dl * kIq4Levels[qs[16 * ib + j] >> 4];
      }
    }
  }
}

void QuantizeRowIQ4_NL(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 32, dst += 18) {
    int idx[32];
    StoreFp16(dst, FitLevels(src, idx));
    Requantize(src, Fp16(dst), idx);
    PackCodes(idx, dst + 2);
  }
}

void QuantizeRowIQ4_XS(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 256, dst += 136) {
    float scales[8];
    int idx[32];
    float amax = 0, max = 0;
    for (int ib = 0; ib < 8; ++ib) {
      scales[ib] = FitLevels(src + 32 * ib, idx);
      if (std::fabs(scales[ib]) > amax) {
        amax = std::fabs(scales[ib]);
        max = scales[ib];
      }
    }
    std::memset(dst, 0, 136);
    const float iscale = amax > 0 ? -32.0f / max : 0.0f;
    StoreFp16(dst, amax > 0 ? 1.0f / iscale : 0.0f);
    const float d = Fp16(dst);
    uint16_t scales_h = 0;
    for (int ib = 0; ib < 8; ++ib) {
      const int l = std::clamp(
          static_cast<int>(std::lrintf(iscale * scales[ib])), -32, 31);
      const int ls = l + 32;
      dst[4 + ib / 2] |= static_cast<uint8_t>((ls & 0x0F) << (4 * (ib % 2)));
      scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
      Requantize(src + 32 * ib, d * l, idx);
      PackCodes(idx, dst + 8 + 16 * ib);
    }
    std::memcpy(dst + 2, &scales_h, 2);
  }
}

}  // namespace lumen::engine::quant
