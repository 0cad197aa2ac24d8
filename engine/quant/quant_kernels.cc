#include "engine/quant/quant_kernels.h"

#include <immintrin.h>

#include <cstring>
#include <vector>

#include "engine/kernels/horizontal_sum.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/quant/k_tiles.h"

namespace lumen::engine::quant {

namespace {

using kernels::HorizontalSum;

bool Avx512() {
  return kernels::ActiveSmallGemmIsa() == kernels::SmallGemmIsa::kAvx512;
}

// Rows are quantized on the calling thread's team from this many values
// on (a prompt chunk); below, a team's start costs more than it saves.
constexpr int64_t kParallelQuantizeValues = 1 << 15;

}  // namespace

void QuantizeActivations(const float* x, int64_t M, int64_t K, int8_t* q,
                         float* d4, float* sum16, float* sum32,
                         int32_t* zsum32) {
  const int64_t blocks = K / 32;
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
#pragma omp parallel for schedule(static) if (M * K >= kParallelQuantizeValues)
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* src = x + m * K + b * 32;
      __m256 v[4];
      __m256 vmax = _mm256_setzero_ps();
      for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(src + 8 * k);
        vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign_mask, v[k]));
      }
      __m128 mx = _mm_max_ps(_mm256_castps256_ps128(vmax),
                             _mm256_extractf128_ps(vmax, 1));
      mx = _mm_max_ps(mx, _mm_movehl_ps(mx, mx));
      mx = _mm_max_ss(mx, _mm_movehdup_ps(mx));
      // The scale is rounded to fp16 as in llama.cpp's Q8_0 activations (the
      // codes still use the exact 127 / max), which keeps this engine's
      // arithmetic next to llama.cpp's on the same file.
      const float amax = _mm_cvtss_f32(mx);
      const float d =
          _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
      const __m256 inv = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
      __m256i i32[4];
      for (int k = 0; k < 4; ++k) {
        i32[k] = _mm256_cvtps_epi32(
            _mm256_round_ps(_mm256_mul_ps(v[k], inv), _MM_ROUND_NEAREST));
      }
      const __m256i half_a = _mm256_add_epi32(i32[0], i32[1]);
      const __m256i half_b = _mm256_add_epi32(i32[2], i32[3]);
      sum16[m * (K / 16) + 2 * b] =
          d * static_cast<float>(HorizontalSum(half_a));
      sum16[m * (K / 16) + 2 * b + 1] =
          d * static_cast<float>(HorizontalSum(half_b));
      const int32_t qsum = HorizontalSum(_mm256_add_epi32(half_a, half_b));
      sum32[m * (K / 32) + b] = d * static_cast<float>(qsum);
      // In unsigned arithmetic: a NaN activation converts to INT_MIN, and
      // the product must wrap (garbage for a row that is NaN anyway), not
      // be undefined.
      zsum32[m * (K / 32) + b] = static_cast<int32_t>(
          static_cast<uint32_t>(qsum) * static_cast<uint32_t>(-128));
      _mm256_storeu_ps(d4 + m * (K / 4) + 8 * b, _mm256_set1_ps(d));
      // Pack 32 int32 -> 32 int8 and undo the lane interleaving of packs.
      const __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]);
      const __m256i i16b = _mm256_packs_epi32(i32[2], i32[3]);
      __m256i i8 = _mm256_packs_epi16(i16a, i16b);
      i8 = _mm256_permutevar8x32_epi32(
          i8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + m * K + b * 32), i8);
    }
  }
}

void QuantizeActivationsPerSpan(const float* x, int64_t M, int64_t K, int8_t* q,
                                float* d, int16_t* bsum16, int16_t* bsum32) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
#pragma omp parallel for schedule(static) if (M * K >= kParallelQuantizeValues)
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t s = 0; s < K / 256; ++s) {
      const float* src = x + m * K + s * 256;
      __m256 vmax = _mm256_setzero_ps();
      for (int k = 0; k < 32; ++k) {
        vmax = _mm256_max_ps(
            vmax, _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(src + 8 * k)));
      }
      __m128 mx = _mm_max_ps(_mm256_castps256_ps128(vmax),
                             _mm256_extractf128_ps(vmax, 1));
      mx = _mm_max_ps(mx, _mm_movehl_ps(mx, mx));
      mx = _mm_max_ss(mx, _mm_movehdup_ps(mx));
      const float amax = _mm_cvtss_f32(mx);
      d[m * (K / 256) + s] = amax / 127.0f;
      const __m256 inv = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
      for (int b = 0; b < 8; ++b) {  // 32 values at a time
        __m256i i32[4];
        for (int k = 0; k < 4; ++k) {
          i32[k] = _mm256_cvtps_epi32(_mm256_round_ps(
              _mm256_mul_ps(_mm256_loadu_ps(src + 32 * b + 8 * k), inv),
              _MM_ROUND_NEAREST));
        }
        // Sums in vectors: a NaN activation converts to INT_MIN, which a
        // scalar int addition could overflow (UB); the int16 casts then
        // keep garbage for a row that is NaN anyway.
        const __m256i half_a = _mm256_add_epi32(i32[0], i32[1]);
        const __m256i half_b = _mm256_add_epi32(i32[2], i32[3]);
        const int64_t b16 = m * (K / 16) + 16 * s + 2 * b;
        bsum16[b16] = static_cast<int16_t>(HorizontalSum(half_a));
        bsum16[b16 + 1] = static_cast<int16_t>(HorizontalSum(half_b));
        bsum32[m * (K / 32) + 8 * s + b] = static_cast<int16_t>(
            HorizontalSum(_mm256_add_epi32(half_a, half_b)));
        const __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]);
        const __m256i i16b = _mm256_packs_epi32(i32[2], i32[3]);
        __m256i i8 = _mm256_packs_epi16(i16a, i16b);
        i8 = _mm256_permutevar8x32_epi32(
            i8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(
            reinterpret_cast<__m256i*>(q + m * K + s * 256 + 32 * b), i8);
      }
    }
  }
}

QuantizedActs ActsFrom(const QuantizedActs& x, int64_t m0, int64_t K) {
  QuantizedActs r{nullptr, nullptr, nullptr, nullptr, nullptr};
  if (x.q != nullptr) {
    r = {x.q + m0 * K, x.d4 + m0 * (K / 4), x.sum16 + m0 * (K / 16),
         x.sum32 + m0 * (K / 32), x.zsum32 + m0 * (K / 32)};
  }
  if (x.q256 != nullptr) {
    r.q256 = x.q256 + m0 * K;
    r.d256 = x.d256 + m0 * (K / 256);
    r.bsum16 = x.bsum16 + m0 * (K / 16);
    r.bsum32 = x.bsum32 + m0 * (K / 32);
  }
  return r;
}

int64_t PackedPanelBytes(int64_t K) {
  // 16 rows: K codes each, and per 16 values a scale and an offset. The
  // Q4_K/Q6_K tile kernel uses the scale and offset area as 32 zmms of
  // integer scales and factors per 256-value span (k_tiles_avx512.cc).
  return 16 * K + 2 * 16 * (K / 16) * 4;
}

bool InterleaveWanted(int64_t K) { return Avx512() && K % 256 == 0; }

void InterleaveRows(uint32_t type, uint8_t* w, int64_t N, int64_t K,
                    int64_t row_bytes) {
  const int64_t spans = K / 256, span_bytes = row_bytes / spans;
  std::vector<uint8_t> tile(kInterleaveRows * row_bytes);
  if (TiledType(type)) return TileRows(type, w, N, K, tile.data());
  for (int64_t n0 = 0; n0 < N; n0 += kInterleaveRows) {
    const int64_t rows = N - n0 < kInterleaveRows ? N - n0 : kInterleaveRows;
    uint8_t* dst = w + n0 * row_bytes;
    std::memcpy(tile.data(), dst, rows * row_bytes);
    for (int64_t s = 0; s < spans; ++s) {
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(dst, tile.data() + r * row_bytes + s * span_bytes,
                    span_bytes);
        dst += span_bytes;
      }
    }
  }
}

bool ReadsSpanActivations(uint32_t type, bool interleaved) {
  return interleaved && SpanActivationType(type);
}

void CopyInterleavedSpan(uint32_t type, const uint8_t* w, int64_t N, int64_t K,
                         int64_t row_bytes, int64_t row, int64_t s,
                         uint8_t* out) {
  if (TiledType(type)) return UntileBlock(type, w, N, K, row, s, out);
  const int64_t span_bytes = row_bytes / (K / 256);
  const int64_t n0 = row - row % kInterleaveRows;
  const int64_t rows = N - n0 < kInterleaveRows ? N - n0 : kInterleaveRows;
  std::memcpy(
      out, w + n0 * row_bytes + (s * rows + row % kInterleaveRows) * span_bytes,
      span_bytes);
}

void PackedMatmul(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
                  const uint8_t* w, int64_t N, float* y, int64_t ldy,
                  uint8_t* panels, int panel_slots, bool interleaved) {
  // Interleaved rows exist only where the AVX-512 kernels were chosen
  // (InterleaveWanted); only they read that order. Callers reserve panel
  // slots (LinearScratch::Reserve) before any packed matmul.
  if (interleaved || (Avx512() && panel_slots > 0)) {
    avx512::PackedGemm(type, x, M, K, w, N, y, ldy, panels, panel_slots,
                       interleaved);
  } else {
    avx2::PackedGemv(type, x, M, K, w, N, y, ldy);
  }
}

}  // namespace lumen::engine::quant
