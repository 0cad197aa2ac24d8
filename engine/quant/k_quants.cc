#include "engine/quant/k_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/quant/block_common.h"

namespace lumen::engine::quant {

namespace {

int Nearest(float v) { return static_cast<int>(std::lrintf(v)); }

// Fits x ~ scale * q - min with q in [0, nmax], scale >= 0, min >= 0 (the
// offset is never positive, as the formats store it subtracted), trying a
// band of candidate step sizes around range / nmax and solving the weighted
// least squares for scale and min at each candidate's codes.
void FitScaleMin(const float* x, const float* w, int n, int nmax, float* scale,
                 float* min) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);
  if (hi <= lo) {
    *scale = 0.0f;
    *min = -lo;
    return;
  }
  auto error = [&](float s, float m) {
    double e = 0;
    for (int i = 0; i < n; ++i) {
      const int q = std::clamp(s > 0 ? Nearest((x[i] - m) / s) : 0, 0, nmax);
      const double d = s * q + m - x[i];
      e += w[i] * d * d;
    }
    return e;
  };
  float best_s = (hi - lo) / nmax, best_m = lo;
  double best = error(best_s, best_m);
  int q[256];
  for (int step = 0; step <= 20; ++step) {
    const float iscale = (nmax - 1.0f + 0.1f * step) / (hi - lo);
    double sw = 0, sl = 0, sl2 = 0, sx = 0, slx = 0;
    for (int i = 0; i < n; ++i) {
      q[i] = std::clamp(Nearest(iscale * (x[i] - lo)), 0, nmax);
      sw += w[i];
      sl += w[i] * q[i];
      sl2 += w[i] * q[i] * q[i];
      sx += w[i] * x[i];
      slx += w[i] * q[i] * x[i];
    }
    const double det = sw * sl2 - sl * sl;
    if (det <= 0) continue;
    double s = (sw * slx - sl * sx) / det;
    double m = (sl2 * sx - sl * slx) / det;
    if (m > 0) {
      m = 0;
      s = sl2 > 0 ? slx / sl2 : 0;
    }
    if (s <= 0) continue;
    const double e = error(static_cast<float>(s), static_cast<float>(m));
    if (e < best) {
      best = e;
      best_s = static_cast<float>(s);
      best_m = static_cast<float>(m);
    }
  }
  *scale = best_s;
  *min = -best_m;
}

// Packs 8 six-bit scales and mins as Q4_K/Q5_K store them.
void PackScalesQ4K(const int* ls, const int* lm, uint8_t* packed) {
  std::memset(packed, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      packed[j] = static_cast<uint8_t>(ls[j]);
      packed[j + 4] = static_cast<uint8_t>(lm[j]);
    } else {
      packed[j + 4] =
          static_cast<uint8_t>((ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

// The shared first half of Q4_K and Q5_K: per 32-element sub-block scale
// and min, quantized to 6 bits under fp16 super-block scales. Writes
// d | dmin | scales[12] and the codes L[256] in [0, nmax].
void QuantizeSuperBlockQ45(const float* x, int nmax, uint8_t* head, int* L) {
  float scales[8], mins[8], w[32];
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    double ss = 0;
    for (int i = 0; i < 32; ++i) ss += xs[i] * xs[i];
    const float av = static_cast<float>(std::sqrt(ss / 32));
    for (int i = 0; i < 32; ++i) w[i] = av + std::fabs(xs[i]);
    FitScaleMin(xs, w, 32, nmax, &scales[j], &mins[j]);
  }
  const float max_scale = *std::max_element(scales, scales + 8);
  const float max_min = *std::max_element(mins, mins + 8);
  const float inv_s = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_m = max_min > 0 ? 63.0f / max_min : 0.0f;
  int ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = std::min(63, Nearest(inv_s * scales[j]));
    lm[j] = std::min(63, Nearest(inv_m * mins[j]));
  }
  StoreFp16(head, max_scale / 63.0f);
  StoreFp16(head + 2, max_min / 63.0f);
  PackScalesQ4K(ls, lm, head + 4);
  const float d = Fp16(head), dmin = Fp16(head + 2);
  for (int j = 0; j < 8; ++j) {
    const float dl = d * ls[j], dm = dmin * lm[j];
    for (int i = 0; i < 32; ++i) {
      L[32 * j + i] =
          dl > 0 ? std::clamp(Nearest((x[32 * j + i] + dm) / dl), 0, nmax) : 0;
    }
  }
}

// Per 16-element sub-block symmetric scales under one fp16 super-block
// scale: Q3_K (nmax 4, 6-bit signed scales) and Q6_K (nmax 32, 8-bit).
// Writes the super-block scale's value and the integer sub-block scales and
// codes in [0, 2 nmax).
float QuantizeSuperBlockSymmetric(const float* x, int nmax, int scale_max,
                                  int* sub_scales, int* L) {
  float scales[16], w[16];
  int q[16];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < 16; ++j) {
    for (int i = 0; i < 16; ++i) w[i] = x[16 * j + i] * x[16 * j + i];
    scales[j] = FitSymmetricScale(x + 16 * j, w, 16, nmax, q);
    if (std::fabs(scales[j]) > amax) {
      amax = std::fabs(scales[j]);
      max_scale = scales[j];
    }
  }
  if (amax == 0) {
    for (int j = 0; j < 16; ++j) sub_scales[j] = 0;
    for (int i = 0; i < kSuperBlock; ++i) L[i] = nmax;
    return 0.0f;
  }
  const float iscale = -scale_max / max_scale;
  for (int j = 0; j < 16; ++j)
    sub_scales[j] =
        std::clamp(Nearest(iscale * scales[j]), -scale_max, scale_max - 1);
  const float d = RoundFp16(1.0f / iscale);
  for (int j = 0; j < 16; ++j) {
    const float dl = d * sub_scales[j];
    for (int i = 0; i < 16; ++i) {
      const int v = dl != 0 ? Nearest(x[16 * j + i] / dl) : 0;
      L[16 * j + i] = std::clamp(v, -nmax, nmax - 1) + nmax;
    }
  }
  return d;
}

}  // namespace

float FitSymmetricScale(const float* x, const float* weight, int n, int nmax,
                        int* q) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  for (int i = 0; i < n; ++i) q[i] = 0;
  if (amax < 1e-30f) return 0.0f;
  double best_score = -1;
  float best_scale = 0;
  int cand[256];
  for (int step = -9; step <= 9; ++step) {
    const float iscale = -(nmax + 0.1f * step) / max;
    double sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
      cand[i] = std::clamp(Nearest(iscale * x[i]), -nmax, nmax - 1);
      sumlx += weight[i] * x[i] * cand[i];
      suml2 += weight[i] * cand[i] * cand[i];
    }
    // Error = sum w x^2 - sumlx^2 / suml2 at the optimal scale.
    if (suml2 > 0 && sumlx * sumlx / suml2 > best_score) {
      best_score = sumlx * sumlx / suml2;
      best_scale = static_cast<float>(sumlx / suml2);
      std::copy(cand, cand + n, q);
    }
  }
  return best_scale;
}

void UnpackScalesQ3K(const uint8_t* p, int8_t* scales) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? p[j] & 0x0F : p[j - 8] >> 4;
    const int high = (p[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

void UnpackScalesQ4K(const uint8_t* p, uint8_t* scales, uint8_t* mins) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = p[j] & 63;
      mins[j] = p[j + 4] & 63;
    } else {
      scales[j] = (p[j + 4] & 0x0F) | ((p[j - 4] >> 6) << 4);
      mins[j] = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
    }
  }
}

// ---- Q2_K ----------------------------------------------------------------

void DequantizeRowQ2_K(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 84, dst += 256) {
    const uint8_t* scales = src;
    const uint8_t* qs = src + 16;
    const float d = Fp16(src + 80), dmin = Fp16(src + 82);
    for (int c = 0; c < 8; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int sub = 2 * c + l / 16;
        const int q = (qs[32 * (c / 4) + l] >> (2 * (c % 4))) & 3;
        dst[32 * c + l] =
            d * (scales[sub] & 0x0F) * q - dmin * (scales[sub] >> 4);
      }
    }
  }
}

void QuantizeRowQ2_K(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 256, dst += 84) {
    float scales[16], mins[16], w[16];
    for (int j = 0; j < 16; ++j) {
      for (int i = 0; i < 16; ++i) w[i] = std::fabs(src[16 * j + i]);
      FitScaleMin(src + 16 * j, w, 16, 3, &scales[j], &mins[j]);
    }
    const float max_scale = *std::max_element(scales, scales + 16);
    const float max_min = *std::max_element(mins, mins + 16);
    const float inv_s = max_scale > 0 ? 15.0f / max_scale : 0.0f;
    const float inv_m = max_min > 0 ? 15.0f / max_min : 0.0f;
    StoreFp16(dst + 80, max_scale / 15.0f);
    StoreFp16(dst + 82, max_min / 15.0f);
    const float d = Fp16(dst + 80), dmin = Fp16(dst + 82);
    int L[256];
    for (int j = 0; j < 16; ++j) {
      const int ls = std::min(15, Nearest(inv_s * scales[j]));
      const int lm = std::min(15, Nearest(inv_m * mins[j]));
      dst[j] = static_cast<uint8_t>(ls | (lm << 4));
      const float dl = d * ls, dm = dmin * lm;
      for (int i = 0; i < 16; ++i) {
        L[16 * j + i] =
            dl > 0 ? std::clamp(Nearest((src[16 * j + i] + dm) / dl), 0, 3) : 0;
      }
    }
    uint8_t* qs = dst + 16;
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; ++l) {
        const int* q = L + 128 * h + l;
        qs[32 * h + l] = static_cast<uint8_t>(q[0] | (q[32] << 2) |
                                              (q[64] << 4) | (q[96] << 6));
      }
    }
  }
}

// ---- Q3_K ----------------------------------------------------------------

void DequantizeRowQ3_K(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 110, dst += 256) {
    const uint8_t* hmask = src;
    const uint8_t* qs = src + 32;
    int8_t scales[16];
    UnpackScalesQ3K(src + 96, scales);
    const float d = Fp16(src + 108);
    for (int c = 0; c < 8; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int low = (qs[32 * (c / 4) + l] >> (2 * (c % 4))) & 3;
        const int high = (hmask[l] >> c) & 1;
        dst[32 * c + l] =
            d * scales[2 * c + l / 16] * ((low | (high << 2)) - 4);
      }
    }
  }
}

void QuantizeRowQ3_K(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 256, dst += 110) {
    int sub[16], L[256];
    const float d = QuantizeSuperBlockSymmetric(src, 4, 32, sub, L);
    std::memset(dst, 0, 110);
    uint8_t* hmask = dst;
    uint8_t* qs = dst + 32;
    uint8_t* scales = dst + 96;
    for (int j = 0; j < 16; ++j) {
      const int s = sub[j] + 32;
      if (j < 8) {
        scales[j] |= static_cast<uint8_t>(s & 0x0F);
      } else {
        scales[j - 8] |= static_cast<uint8_t>((s & 0x0F) << 4);
      }
      scales[8 + j % 4] |= static_cast<uint8_t>((s >> 4) << (2 * (j / 4)));
    }
    StoreFp16(dst + 108, d);
    for (int c = 0; c < 8; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int q = L[32 * c + l];
        qs[32 * (c / 4) + l] |= static_cast<uint8_t>((q & 3) << (2 * (c % 4)));
        hmask[l] |= static_cast<uint8_t>(((q >> 2) & 1) << c);
      }
    }
  }
}

// ---- Q4_K / Q5_K ---------------------------------------------------------

void DequantizeRowQ4_K(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 144, dst += 256) {
    const float d = Fp16(src), dmin = Fp16(src + 2);
    uint8_t sc[8], mn[8];
    UnpackScalesQ4K(src + 4, sc, mn);
    const uint8_t* qs = src + 16;
    for (int c = 0; c < 8; ++c) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = qs[32 * (c / 2) + l];
        const int q = c % 2 ? byte >> 4 : byte & 0x0F;
        dst[32 * c + l] = d * sc[c] * q - dmin * mn[c];
      }
    }
  }
}

void DequantizeRowQ5_K(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 176, dst += 256) {
    const float d = Fp16(src), dmin = Fp16(src + 2);
    uint8_t sc[8], mn[8];
    UnpackScalesQ4K(src + 4, sc, mn);
    const uint8_t* qh = src + 16;
    const uint8_t* qs = src + 48;
    for (int c = 0; c < 8; ++c) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = qs[32 * (c / 2) + l];
        const int q =
            (c % 2 ? byte >> 4 : byte & 0x0F) | (((qh[l] >> c) & 1) << 4);
        dst[32 * c + l] = d * sc[c] * q - dmin * mn[c];
      }
    }
  }
}

void QuantizeRowQ4_K(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 256, dst += 144) {
    int L[256];
    QuantizeSuperBlockQ45(src, 15, dst, L);
    uint8_t* qs = dst + 16;
    for (int c = 0; c < 8; c += 2) {
      for (int l = 0; l < 32; ++l) {
        qs[16 * c + l] =
            static_cast<uint8_t>(L[32 * c + l] | (L[32 * (c + 1) + l] << 4));
      }
    }
  }
}

void QuantizeRowQ5_K(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 256, dst += 176) {
    int L[256];
    QuantizeSuperBlockQ45(src, 31, dst, L);
    uint8_t* qh = dst + 16;
    uint8_t* qs = dst + 48;
    std::memset(qh, 0, 32);
    for (int c = 0; c < 8; ++c) {
      for (int l = 0; l < 32; ++l) {
        qh[l] |= static_cast<uint8_t>(((L[32 * c + l] >> 4) & 1) << c);
      }
    }
    for (int c = 0; c < 8; c += 2) {
      for (int l = 0; l < 32; ++l) {
        qs[16 * c + l] = static_cast<uint8_t>(
            (L[32 * c + l] & 0x0F) | ((L[32 * (c + 1) + l] & 0x0F) << 4));
      }
    }
  }
}

// ---- Q6_K ----------------------------------------------------------------

// Element i of a Q6_K super-block (0..255): 128-element half h = i / 128,
// within it quarter k = (i % 128) / 32 and lane l = i % 32. Low nibble from
// ql[64h + 32 (k % 2) + l] (high half of the byte when k >= 2), the two high
// bits from qh[32h + l] at bit 2k.
void DequantizeRowQ6_K(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 210, dst += 256) {
    const uint8_t* ql = src;
    const uint8_t* qh = src + 128;
    const int8_t* scales = reinterpret_cast<const int8_t*>(src + 192);
    const float d = Fp16(src + 208);
    for (int i = 0; i < 256; ++i) {
      const int h = i / 128, k = (i % 128) / 32, l = i % 32;
      const uint8_t low_byte = ql[64 * h + 32 * (k % 2) + l];
      const int low = k >= 2 ? low_byte >> 4 : low_byte & 0x0F;
      const int high = (qh[32 * h + l] >> (2 * k)) & 3;
      dst[i] = d * scales[i / 16] * ((low | (high << 4)) - 32);
    }
  }
}

void QuantizeRowQ6_K(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += 256, dst += 210) {
    int sub[16], L[256];
    const float d = QuantizeSuperBlockSymmetric(src, 32, 128, sub, L);
    std::memset(dst, 0, 210);
    uint8_t* ql = dst;
    uint8_t* qh = dst + 128;
    for (int j = 0; j < 16; ++j)
      dst[192 + j] = static_cast<uint8_t>(static_cast<int8_t>(sub[j]));
    StoreFp16(dst + 208, d);
    for (int i = 0; i < 256; ++i) {
      const int h = i / 128, k = (i % 128) / 32, l = i % 32;
      uint8_t& low_byte = ql[64 * h + 32 * (k % 2) + l];
      low_byte |= static_cast<uint8_t>((L[i] & 0x0F) << (k >= 2 ? 4 : 0));
      qh[32 * h + l] |= static_cast<uint8_t>((L[i] >> 4) << (2 * k));
    }
  }
}

}  // namespace lumen::engine::quant
