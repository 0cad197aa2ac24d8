#include "engine/kernels/paged_attention.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "engine/kernels/cpu_ops.h"

namespace lumen::engine::kernels {

void PagedAttention(const float* q, int64_t q_stride,
                    const AttentionQuery* queries, int64_t n,
                    const KvCache& cache, int64_t layer,
                    const AttentionShape& s, float* scratch,
                    int64_t max_context, float* out) {
  const int64_t hd = s.head_dim;
  const int64_t bs = cache.shape().block_size;
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t items = n * s.n_heads;
  KvCache& kv = const_cast<KvCache&>(cache);  // read-only use
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t t = item / s.n_heads;
    const int64_t h = item % s.n_heads;
    const int64_t kvh = h / group;
    const AttentionQuery& query = queries[t];
    const float* qh = q + t * q_stride + h * hd;
    float* scores = scratch + omp_get_thread_num() * max_context;
    const int64_t len = query.position + 1;
    float max_score = -INFINITY;
    for (int64_t p = 0; p < len; ++p) {
      const float* k =
          kv.Keys(query.block_table[p / bs], layer) + (kvh * bs + p % bs) * hd;
      scores[p] = Dot(qh, k, hd) * s.scale;
      max_score = std::max(max_score, scores[p]);
    }
    float sum = 0.0f;
    for (int64_t p = 0; p < len; ++p) {
      scores[p] = std::exp(scores[p] - max_score);
      sum += scores[p];
    }
    const float inv = 1.0f / sum;
    float* o = out + t * s.n_heads * hd + h * hd;
    std::memset(o, 0, hd * sizeof(float));
    for (int64_t p = 0; p < len; ++p) {
      const float* v = kv.Values(query.block_table[p / bs], layer) +
                       (kvh * bs + p % bs) * hd;
      Axpy(scores[p] * inv, v, o, hd);
    }
  }
}

}  // namespace lumen::engine::kernels
