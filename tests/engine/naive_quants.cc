#include "tests/engine/naive_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lumen::testing {

namespace {

using engine::GgmlType;

double Half(const uint8_t* p) {
  const int h = p[0] | (p[1] << 8);
  const int sign = h >> 15, exponent = (h >> 10) & 31, mantissa = h & 1023;
  double v;
  if (exponent == 0) {
    v = std::ldexp(mantissa, -24);
  } else if (exponent == 31) {
    v = mantissa ? NAN : INFINITY;
  } else {
    v = std::ldexp(1024 + mantissa, exponent - 25);
  }
  return sign ? -v : v;
}

// The fp16 value nearest to f (ties to even), for normal magnitudes.
double RoundToHalf(float f) {
  if (f == 0) return 0;
  int e;
  std::frexp(f, &e);  // f = m 2^e, 0.5 <= |m| < 1
  const double ulp = std::ldexp(1.0, std::max(e - 11, -24));
  return std::nearbyint(f / ulp) * ulp;
}

double Bf16(const uint8_t* p) {
  const uint32_t bits =
      (static_cast<uint32_t>(p[0]) << 16) | (static_cast<uint32_t>(p[1]) << 24);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// 4-bit code of element i (0..31) of a 16-byte nibble array.
int Nibble(const uint8_t* qs, int i) {
  return i < 16 ? qs[i] & 15 : qs[i - 16] >> 4;
}

int Bit(const uint8_t* bytes, int bit) {
  return (bytes[bit / 8] >> (bit % 8)) & 1;
}

const int kIq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                      1,    13,   25,  38,  53,  69,  89,  113};

// Block decoders: element i of the block at b.
double Q4_0(const uint8_t* b, int i) {
  return Half(b) * (Nibble(b + 2, i) - 8);
}
double Q4_1(const uint8_t* b, int i) {
  return Half(b) * Nibble(b + 4, i) + Half(b + 2);
}
double Q5_0(const uint8_t* b, int i) {
  return Half(b) * (Nibble(b + 6, i) + 16 * Bit(b + 2, i) - 16);
}
double Q5_1(const uint8_t* b, int i) {
  return Half(b) * (Nibble(b + 8, i) + 16 * Bit(b + 4, i)) + Half(b + 2);
}
double Q8_0(const uint8_t* b, int i) {
  return Half(b) * static_cast<int8_t>(b[2 + i]);
}
double IQ4_NL(const uint8_t* b, int i) {
  return Half(b) * kIq4[Nibble(b + 2, i)];
}

double Q2_K(const uint8_t* b, int i) {
  const uint8_t* qs = b + 16;
  const int q = (qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3;
  const int sc = b[i / 16];
  return Half(b + 80) * (sc & 15) * q - Half(b + 82) * (sc >> 4);
}

double Q3_K(const uint8_t* b, int i) {
  const uint8_t* qs = b + 32;
  const uint8_t* packed = b + 96;
  const int j = (i % 128) / 32;
  const int low = (qs[32 * (i / 128) + i % 32] >> (2 * j)) & 3;
  const int high = (b[i % 32] >> (4 * (i / 128) + j)) & 1;
  const int s = i / 16;
  const int s_low = s < 8 ? packed[s] & 15 : packed[s - 8] >> 4;
  const int s_high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
  return Half(b + 108) * ((s_low | (s_high << 4)) - 32) * (low + 4 * high - 4);
}

// get_scale_min_k4 of the ggml docs: sub-block j of a 12-byte field.
void ScaleMin(const uint8_t* p, int j, int* sc, int* mn) {
  if (j < 4) {
    *sc = p[j] & 63;
    *mn = p[j + 4] & 63;
  } else {
    *sc = (p[j + 4] & 15) | ((p[j - 4] >> 6) << 4);
    *mn = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
  }
}

double Q4_K(const uint8_t* b, int i) {
  int sc, mn;
  ScaleMin(b + 4, i / 32, &sc, &mn);
  const int q = (b[16 + 32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2))) & 15;
  return Half(b) * sc * q - Half(b + 2) * mn;
}

double Q5_K(const uint8_t* b, int i) {
  int sc, mn;
  ScaleMin(b + 4, i / 32, &sc, &mn);
  const int low = (b[48 + 32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2))) & 15;
  const int high = (b[16 + i % 32] >> (i / 32)) & 1;
  return Half(b) * sc * (low + 16 * high) - Half(b + 2) * mn;
}

double Q6_K(const uint8_t* b, int i) {
  const int half = i / 128, j = (i % 128) / 32, l = i % 32;
  const uint8_t low_byte = b[64 * half + 32 * (j % 2) + l];
  const int low = j < 2 ? low_byte & 15 : low_byte >> 4;
  const int high = (b[128 + 32 * half + l] >> (2 * j)) & 3;
  return Half(b + 208) * static_cast<int8_t>(b[192 + i / 16]) *
         ((low | (high << 4)) - 32);
}

double IQ4_XS(const uint8_t* b, int i) {
  const int ib = i / 32;
  const int scales_h = b[2] | (b[3] << 8);
  const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) |
                 (((scales_h >> (2 * ib)) & 3) << 4);
  return Half(b) * (ls - 32) * kIq4[Nibble(b + 8 + 16 * ib, i % 32)];
}

struct Format {
  GgmlType type;
  int elems, bytes;
  double (*element)(const uint8_t*, int);
};

const Format kFormats[] = {
    {GgmlType::kQ4_0, 32, 18, Q4_0},     {GgmlType::kQ4_1, 32, 20, Q4_1},
    {GgmlType::kQ5_0, 32, 22, Q5_0},     {GgmlType::kQ5_1, 32, 24, Q5_1},
    {GgmlType::kQ8_0, 32, 34, Q8_0},     {GgmlType::kQ2_K, 256, 84, Q2_K},
    {GgmlType::kQ3_K, 256, 110, Q3_K},   {GgmlType::kQ4_K, 256, 144, Q4_K},
    {GgmlType::kQ5_K, 256, 176, Q5_K},   {GgmlType::kQ6_K, 256, 210, Q6_K},
    {GgmlType::kIQ4_NL, 32, 18, IQ4_NL}, {GgmlType::kIQ4_XS, 256, 136, IQ4_XS},
};

const Format* Find(GgmlType t) {
  for (const Format& f : kFormats)
    if (f.type == t) return &f;
  return nullptr;
}

}  // namespace

int NaiveBlockElems(GgmlType type) {
  if (type == GgmlType::kF32 || type == GgmlType::kF16 ||
      type == GgmlType::kBF16)
    return 1;
  const Format* f = Find(type);
  return f ? f->elems : 0;
}

int NaiveBlockBytes(GgmlType type) {
  if (type == GgmlType::kF32) return 4;
  if (type == GgmlType::kF16 || type == GgmlType::kBF16) return 2;
  const Format* f = Find(type);
  return f ? f->bytes : 0;
}

std::vector<double> NaiveDequantize(GgmlType type, const uint8_t* data,
                                    int64_t n) {
  std::vector<double> out(n);
  switch (type) {
    case GgmlType::kF32:
      for (int64_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, data + 4 * i, 4);
        out[i] = f;
      }
      return out;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) out[i] = Half(data + 2 * i);
      return out;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) out[i] = Bf16(data + 2 * i);
      return out;
    default:
      break;
  }
  const Format* f = Find(type);
  if (f == nullptr) return {};
  for (int64_t i = 0; i < n; ++i)
    out[i] = f->element(data + (i / f->elems) * f->bytes, i % f->elems);
  return out;
}

std::vector<double> NaiveQuantizeActivations(const std::vector<float>& x) {
  std::vector<double> out(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    double amax = 0;
    for (size_t i = b; i < b + 32; ++i)
      amax = std::max(amax, std::fabs(double(x[i])));
    const float id = amax != 0 ? 127.0f / static_cast<float>(amax) : 0.0f;
    // d rounded to fp16: the nearest half to max / 127 (round half even).
    const double d = RoundToHalf(static_cast<float>(amax) / 127.0f);
    for (size_t i = b; i < b + 32; ++i) out[i] = d * std::nearbyint(x[i] * id);
  }
  return out;
}

std::vector<double> NaiveQuantizeActivationsPerSpan(
    const std::vector<float>& x) {
  std::vector<double> out(x.size());
  for (size_t b = 0; b < x.size(); b += 256) {
    float amax = 0;
    for (size_t i = b; i < b + 256; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float id = amax != 0 ? 127.0f / amax : 0.0f;
    const double d = amax / 127.0f;
    for (size_t i = b; i < b + 256; ++i) out[i] = d * std::nearbyint(x[i] * id);
  }
  return out;
}

}  // namespace lumen::testing
