#include "engine/kernels/cpu_ops.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "engine/kernels/horizontal_sum.h"
#include "engine/kernels/vec_exp.h"

namespace lumen::engine::kernels {

namespace {
// 8 fp16 values (bits) as fp32.
inline __m256 Halves8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
}  // namespace

float Dot(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 =
        _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                           _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) {
    acc0 =
        _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  float sum = HorizontalSum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float Dot(const float* a, const uint16_t* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), Halves8(b + i), acc);
  }
  float sum = HorizontalSum(acc);
  for (; i < n; ++i) sum += a[i] * _cvtsh_ss(b[i]);
  return sum;
}

void Axpy(float a, const uint16_t* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(
        y + i, _mm256_fmadd_ps(va, Halves8(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * _cvtsh_ss(x[i]);
}

void FloatsToHalves(const float* x, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(out + i),
        _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) out[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

void HalvesToFloats(const uint16_t* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, Halves8(x + i));
  }
  for (; i < n; ++i) out[i] = _cvtsh_ss(x[i]);
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
                                            _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

// 16 lanes: one scalar chain of dependent adds (RmsNorm's until
// 2026-12-07) was 1.3% of a Q8_0 prefill's perf samples, as much as SiluMul.
double SumOfSquares(const float* x, int64_t n) {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd(), _mm256_setzero_pd()};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 4; ++k) {
      const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k));
      acc[k] = _mm256_fmadd_pd(v, v, acc[k]);
    }
  }
  const __m256d sum4 = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]),
                                     _mm256_add_pd(acc[2], acc[3]));
  double lanes[4];
  _mm256_storeu_pd(lanes, sum4);
  double ss = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  return ss;
}

void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim,
             float eps, float* out) {
#pragma omp parallel for schedule(static) if (rows * dim >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    const double ss = SumOfSquares(xr, dim);
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / dim) + eps);
    for (int64_t i = 0; i < dim; ++i) o[i] = xr[i] * scale * weight[i];
  }
}

void RopeAngles(const int32_t* positions, int64_t rows, const double* frequency,
                int64_t half, float mscale, float* cos_out, float* sin_out) {
#pragma omp parallel for schedule(static) if (rows * half >= (1 << 12))
  for (int64_t r = 0; r < rows; ++r) {
    // In double: the angle grows with the position, and float rounding of
    // theta would move the rotation of late positions.
    const double pos = positions[r];
    for (int64_t i = 0; i < half; ++i) {
      const double theta = pos * frequency[i];
      cos_out[r * half + i] = static_cast<float>(std::cos(theta)) * mscale;
      sin_out[r * half + i] = static_cast<float>(std::sin(theta)) * mscale;
    }
  }
}

void Rope(float* x, int64_t row_stride, const float* cos_table,
          const float* sin_table, int64_t rows, int64_t n_heads,
          int64_t head_dim, int64_t rope_dim, RopeStyle style) {
  const int64_t half = rope_dim / 2;
  // Heads outer, pairs inner: the inner loop then runs over consecutive
  // values and vectorizes (pairs outer, heads inner, strode a head apart:
  // 1.2% of a Q8_0 prefill's perf samples).
#pragma omp parallel for schedule(static) if (rows * n_heads * half >= \
                                              (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = cos_table + r * half;
    const float* s = sin_table + r * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + r * row_stride + h * head_dim;
      if (style == RopeStyle::kAdjacent) {
        for (int64_t i = 0; i < half; ++i) {
          const float x0 = v[2 * i], x1 = v[2 * i + 1];
          v[2 * i] = x0 * c[i] - x1 * s[i];
          v[2 * i + 1] = x0 * s[i] + x1 * c[i];
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          const float x0 = v[i], x1 = v[i + half];
          v[i] = x0 * c[i] - x1 * s[i];
          v[i + half] = x0 * s[i] + x1 * c[i];
        }
      }
    }
  }
}

void SiluMul(const float* gate_up, int64_t rows, int64_t ff, float* out) {
  // Large batches (prompt chunks) make this worth threads.
#pragma omp parallel for schedule(static) if (rows * ff >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate_up + r * 2 * ff;
    const float* u = g + ff;
    float* o = out + r * ff;
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= ff; i += 8) {
      const __m256 gv = _mm256_loadu_ps(g + i);
      const __m256 e = Exp256(_mm256_sub_ps(_mm256_setzero_ps(), gv));
      _mm256_storeu_ps(o + i,
                       _mm256_div_ps(_mm256_mul_ps(gv, _mm256_loadu_ps(u + i)),
                                     _mm256_add_ps(one, e)));
    }
    for (; i < ff; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

void GeluTanhMul(const float* gate_up, int64_t rows, int64_t ff, float* out) {
  // 0.5 g (1 + tanh(u)) = g * sigmoid(2u) = g / (1 + exp(-2u)).
  constexpr float kTwoSqrt2OverPi = 2.0f * 0.7978845608028654f;
  constexpr float kCubic = 0.044715f;
#pragma omp parallel for schedule(static) if (rows * ff >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate_up + r * 2 * ff;
    const float* u = g + ff;
    float* o = out + r * ff;
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 c = _mm256_set1_ps(-kTwoSqrt2OverPi);
    const __m256 cubic = _mm256_set1_ps(kCubic);
    int64_t i = 0;
    for (; i + 8 <= ff; i += 8) {
      const __m256 gv = _mm256_loadu_ps(g + i);
      // -2u = -2 sqrt(2/pi) (g + 0.044715 g^3) = c * g * (1 + 0.044715 g^2)
      const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(cubic, gv), gv,
                                           one);  // 1 + 0.044715 g^2
      const __m256 e = Exp256(_mm256_mul_ps(_mm256_mul_ps(c, gv), inner));
      _mm256_storeu_ps(o + i,
                       _mm256_div_ps(_mm256_mul_ps(gv, _mm256_loadu_ps(u + i)),
                                     _mm256_add_ps(one, e)));
    }
    for (; i < ff; ++i) {
      const float x = g[i];
      const float e = std::exp(-kTwoSqrt2OverPi * x * (1.0f + kCubic * x * x));
      o[i] = x / (1.0f + e) * u[i];
    }
  }
}

void HeadRmsNorm(float* x, int64_t row_stride, int64_t rows, int64_t n_heads,
                 int64_t head_dim, const float* weight, float eps) {
#pragma omp parallel for schedule(static) if (rows * n_heads * head_dim >= \
                                              (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * row_stride;
    RmsNorm(row, weight, n_heads, head_dim, eps, row);
  }
}

void ScaleInPlace(float* x, float a, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] *= a;
}

void AddInPlace(float* x, const float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(
        x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) x[i] += y[i];
}

void RoundToF16(const float* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h =
        _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i)
    out[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

void RoundToBf16(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &x[i], 4);
    if ((u & 0x7fffffff) > 0x7f800000) {
      u |= 0x00400000;  // NaN stays a (quiet) NaN
    } else {
      u += 0x7fff + ((u >> 16) & 1);
    }
    u &= 0xffff0000;
    std::memcpy(&out[i], &u, 4);
  }
}

}  // namespace lumen::engine::kernels
