#pragma once
// Q4_K/Q5_K scales of 16 weight rows in the 16 lanes of a zmm, from each
// row's 16-byte block head (fp16 d and dmin, then 12 bytes of 6-bit scales
// and mins): the fp32 run scales of the kernel that gathers the heads from
// the rows (gemm_avx512.cc), and the integer six-bit scales the tile kernel
// reads from pre-transposed heads (k_tiles_avx512.cc). AVX-512 files only;
// no C++ library headers (see gemm_avx512.cc).

#include <immintrin.h>

namespace lumen::engine::quant::avx512 {
namespace {

// Lane r of each: dword k of row r's block head (k = 0: d | dmin << 16;
// 1, 2, 3: the scale bytes).
struct Q45Heads {
  __m512i dmin_d, w0, w1, w2;
};

// The six-bit scale and min of run j (values 32j..32j+31) of each lane's
// block, as integers.
inline void Q45RunSixBits(const Q45Heads& h, int j, __m512i* s6, __m512i* m6) {
  const __m512i six = _mm512_set1_epi32(63), four = _mm512_set1_epi32(15),
                two = _mm512_set1_epi32(3);
  if (j < 4) {
    *s6 = _mm512_and_si512(_mm512_srli_epi32(h.w0, 8 * j), six);
    *m6 = _mm512_and_si512(_mm512_srli_epi32(h.w1, 8 * j), six);
  } else {
    const int i = j - 4;
    *s6 = _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi32(h.w2, 8 * i), four),
        _mm512_slli_epi32(
            _mm512_and_si512(_mm512_srli_epi32(h.w0, 8 * i + 6), two), 4));
    *m6 = _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi32(h.w2, 8 * i + 4), four),
        _mm512_slli_epi32(
            _mm512_and_si512(_mm512_srli_epi32(h.w1, 8 * i + 6), two), 4));
  }
}

// Each lane's fp16 d and dmin as fp32.
inline __m512 Q45D(const Q45Heads& h) {
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h.dmin_d));
}
inline __m512 Q45Dmin(const Q45Heads& h) {
  return _mm512_cvtph_ps(
      _mm512_cvtepi32_epi16(_mm512_srli_epi32(h.dmin_d, 16)));
}

// The fp32 scale (six-bit scale times d) and offset (six-bit min times
// -dmin) of run j of each lane's block.
inline void Q45RunScales(const Q45Heads& h, int j, __m512* scale,
                         __m512* offset) {
  const __m512 d = Q45D(h);
  const __m512 neg_dmin = _mm512_castsi512_ps(
      _mm512_xor_si512(_mm512_castps_si512(Q45Dmin(h)),
                       _mm512_set1_epi32(static_cast<int>(0x80000000u))));
  __m512i s6, m6;
  Q45RunSixBits(h, j, &s6, &m6);
  *scale = _mm512_mul_ps(_mm512_cvtepi32_ps(s6), d);
  *offset = _mm512_mul_ps(_mm512_cvtepi32_ps(m6), neg_dmin);
}

}  // namespace
}  // namespace lumen::engine::quant::avx512
