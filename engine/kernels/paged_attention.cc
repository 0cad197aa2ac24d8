#include "engine/kernels/paged_attention.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/vec_exp.h"

namespace lumen::engine::kernels {

namespace {

// scores[p] = exp(scores[p] - max); returns their sum.
float ExpMinusMaxInPlace(float* scores, int64_t len, float max) {
  const __m256 m = _mm256_set1_ps(max);
  __m256 acc = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= len; p += 8) {
    const __m256 e = Exp256(_mm256_sub_ps(_mm256_loadu_ps(scores + p), m));
    _mm256_storeu_ps(scores + p, e);
    acc = _mm256_add_ps(acc, e);
  }
  float tail[8] = {};
  float* rest = tail;
  const int64_t left = len - p;
  for (int64_t i = 0; i < left; ++i) rest[i] = scores[p + i] - max;
  for (int64_t i = left; i < 8; ++i) rest[i] = -INFINITY;
  const __m256 e = Exp256(_mm256_loadu_ps(rest));
  _mm256_storeu_ps(rest, e);
  for (int64_t i = 0; i < left; ++i) scores[p + i] = rest[i];
  // Lanes past the end hold exp(-87), about 1.6e-38: zero them.
  acc = _mm256_add_ps(
      acc, _mm256_blendv_ps(_mm256_setzero_ps(), e,
                            _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                                _mm256_set1_epi32(static_cast<int>(left)),
                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)))));
  __m128 s4 =
      _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s4 = _mm_hadd_ps(s4, s4);
  s4 = _mm_hadd_ps(s4, s4);
  return _mm_cvtss_f32(s4);
}

// How many blocks ahead attention fetches keys.
constexpr int64_t kPrefetchBlocks = 4;

inline void PrefetchBlock(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64)
    _mm_prefetch(c + off, _MM_HINT_T0);
}

// 8 cached elements as fp32: float (kF32) or fp16 bits (kF16).
inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 Load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// Attention of one query head over its sequence's cached positions (elements
// of T), with head_dim = 8 * V held in registers: scores four slots at a
// time (one horizontal reduction per four), the output accumulated in
// registers.
template <int V, class T>
void AttendHead(const float* qh, const AttentionQuery& query, KvCache& kv,
                int64_t layer, int64_t kvh, int64_t bs, float scale,
                int64_t first, float* scores, float* out) {
  constexpr int64_t hd = 8 * V;
  __m256 q[V];
  for (int v = 0; v < V; ++v) q[v] = _mm256_loadu_ps(qh + 8 * v);
  const int64_t len = query.position + 1;
  // scores[p - first] belongs to position p; the running maximum is kept
  // four lanes wide (a scalar max chain after the loop was 6% of this
  // kernel's perf samples).
  float max_score = -INFINITY;
  __m128 max4 = _mm_set1_ps(-INFINITY);
  // This head's keys or values in block b of the sequence.
  auto keys = [&](int64_t b) {
    return kv.Keys<T>(query.block_table[b], layer) + kvh * bs * hd;
  };
  auto values = [&](int64_t b) {
    return kv.Values<T>(query.block_table[b], layer) + kvh * bs * hd;
  };
  for (int64_t start = first / bs * bs; start < len; start += bs) {
    const int64_t block = start / bs;
    const T* k = keys(block);
    const int64_t slots = std::min(bs, len - start);
    const int64_t first_slot = std::max<int64_t>(first - start, 0);
    // Blocks are scattered, so the hardware prefetcher restarts at every
    // block: keys are fetched kPrefetchBlocks ahead (a block is processed
    // faster than DRAM answers; the first block asks for all of them), and
    // this block's values for the second pass.
    const int64_t ahead_from =
        block == first / bs ? block + 1 : block + kPrefetchBlocks;
    for (int64_t b = ahead_from; b <= block + kPrefetchBlocks && b * bs < len;
         ++b) {
      PrefetchBlock(keys(b), bs * hd * sizeof(T));
    }
    PrefetchBlock(values(block), bs * hd * sizeof(T));
    int64_t j = first_slot;
    for (; j + 4 <= slots; j += 4) {
      // Two partial sums per slot halve the FMA dependency chains.
      __m256 acc[4], acc2[4];
      for (int s = 0; s < 4; ++s) {
        acc[s] = _mm256_mul_ps(q[0], Load8(k + (j + s) * hd));
        acc2[s] =
            V > 1 ? _mm256_mul_ps(q[V > 1 ? 1 : 0], Load8(k + (j + s) * hd + 8))
                  : _mm256_setzero_ps();
        for (int v = 2; v < V; v += 2) {
          acc[s] =
              _mm256_fmadd_ps(q[v], Load8(k + (j + s) * hd + 8 * v), acc[s]);
          if (v + 1 < V) {
            acc2[s] = _mm256_fmadd_ps(
                q[v + 1], Load8(k + (j + s) * hd + 8 * (v + 1)), acc2[s]);
          }
        }
        acc[s] = _mm256_add_ps(acc[s], acc2[s]);
      }
      const __m256 t0 = _mm256_hadd_ps(acc[0], acc[1]);
      const __m256 t1 = _mm256_hadd_ps(acc[2], acc[3]);
      const __m256 u = _mm256_hadd_ps(t0, t1);
      __m128 four =
          _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
      four = _mm_mul_ps(four, _mm_set1_ps(scale));
      max4 = _mm_max_ps(max4, four);
      _mm_storeu_ps(scores + start + j - first, four);
    }
    for (; j < slots; ++j) {
      scores[start + j - first] = Dot(qh, k + j * hd, hd) * scale;
      max_score = std::max(max_score, scores[start + j - first]);
    }
  }
  max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
  max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
  max_score = std::max(max_score, _mm_cvtss_f32(max4));
  const float sum = ExpMinusMaxInPlace(scores, len - first, max_score);
  __m256 o[V];
  for (int v = 0; v < V; ++v) o[v] = _mm256_setzero_ps();
  for (int64_t start = first / bs * bs; start < len; start += bs) {
    const T* vals = values(start / bs);
    const int64_t slots = std::min(bs, len - start);
    const int64_t first_slot = std::max<int64_t>(first - start, 0);
    for (int64_t j = first_slot; j < slots; ++j) {
      const __m256 p = _mm256_set1_ps(scores[start + j - first]);
      for (int v = 0; v < V; ++v) {
        o[v] = _mm256_fmadd_ps(p, Load8(vals + j * hd + 8 * v), o[v]);
      }
    }
  }
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (int v = 0; v < V; ++v)
    _mm256_storeu_ps(out + 8 * v, _mm256_mul_ps(o[v], inv));
}

// Any head_dim: dot products and axpys row by row (cpu_ops, fp32 or fp16).
template <class T>
void AttendHeadGeneric(const float* qh, const AttentionQuery& query,
                       KvCache& kv, int64_t layer, int64_t kvh, int64_t bs,
                       int64_t hd, float scale, int64_t first, float* scores,
                       float* out) {
  const int64_t len = query.position + 1;
  // scores[p - first] belongs to position p.
  float max_score = -INFINITY;
  for (int64_t p = first; p < len; ++p) {
    const T* k =
        kv.Keys<T>(query.block_table[p / bs], layer) + (kvh * bs + p % bs) * hd;
    scores[p - first] = Dot(qh, k, hd) * scale;
    max_score = std::max(max_score, scores[p - first]);
  }
  float sum = 0.0f;
  for (int64_t i = 0; i < len - first; ++i) {
    scores[i] = std::exp(scores[i] - max_score);
    sum += scores[i];
  }
  std::memset(out, 0, hd * sizeof(float));
  for (int64_t p = first; p < len; ++p) {
    const T* v = kv.Values<T>(query.block_table[p / bs], layer) +
                 (kvh * bs + p % bs) * hd;
    Axpy(scores[p - first] / sum, v, out, hd);
  }
}

// The register kernel for the common head sizes, else the generic one.
template <class T>
void AttendHeadOf(const float* qh, const AttentionQuery& query, KvCache& kv,
                  int64_t layer, int64_t kvh, int64_t bs, int64_t hd,
                  float scale, int64_t first, float* scores, float* o) {
  switch (hd) {
    case 8:
      return AttendHead<1, T>(qh, query, kv, layer, kvh, bs, scale, first,
                              scores, o);
    case 16:
      return AttendHead<2, T>(qh, query, kv, layer, kvh, bs, scale, first,
                              scores, o);
    case 32:
      return AttendHead<4, T>(qh, query, kv, layer, kvh, bs, scale, first,
                              scores, o);
    case 64:
      return AttendHead<8, T>(qh, query, kv, layer, kvh, bs, scale, first,
                              scores, o);
    case 128:
      return AttendHead<16, T>(qh, query, kv, layer, kvh, bs, scale, first,
                               scores, o);
    default:
      return AttendHeadGeneric<T>(qh, query, kv, layer, kvh, bs, hd, scale,
                                  first, scores, o);
  }
}

}  // namespace

void PagedAttention(const float* q, int64_t q_stride,
                    const AttentionQuery* queries, int64_t n,
                    const KvCache& cache, int64_t layer,
                    const AttentionShape& s, float* scratch,
                    int scratch_threads, int64_t max_context, float* out) {
  const int64_t hd = s.head_dim;
  const int64_t bs = cache.shape().block_size;
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t items = n * s.n_heads;
  KvCache& kv = const_cast<KvCache&>(cache);  // read-only use
  // Never more threads than there are scratch rows, whatever team the
  // calling thread has.
  const int team = std::min(omp_get_max_threads(), scratch_threads);
#pragma omp parallel for schedule(dynamic, 4) num_threads(team)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t t = item / s.n_heads;
    const int64_t h = item % s.n_heads;
    const int64_t kvh = h / group;
    const float* qh = q + t * q_stride + h * hd;
    float* o = out + t * s.n_heads * hd + h * hd;
    float* scores = scratch + omp_get_thread_num() * max_context;
    const AttentionQuery& query = queries[t];
    const int64_t first =
        s.window > 0 ? std::max<int64_t>(0, query.position - s.window + 1) : 0;
    if (kv.element() == KvElement::kF16) {
      AttendHeadOf<uint16_t>(qh, query, kv, layer, kvh, bs, hd, s.scale, first,
                             scores, o);
    } else {
      AttendHeadOf<float>(qh, query, kv, layer, kvh, bs, hd, s.scale, first,
                          scores, o);
    }
  }
}

}  // namespace lumen::engine::kernels
