#include "engine/kv_cache.h"

#include <new>

#include "absl/strings/str_cat.h"

namespace lumen::engine {

int64_t KvCache::BlocksForBytes(const KvCacheShape& s, int64_t bytes) {
  const int64_t per_block =
      s.n_kv_heads * s.block_size * s.head_dim * 2 * s.n_layers * 4;
  return per_block > 0 ? bytes / per_block : 0;
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(
    const KvCacheShape& s) {
  if (s.n_layers <= 0 || s.n_kv_heads <= 0 || s.head_dim <= 0 ||
      s.block_size <= 0 || s.num_blocks <= 0) {
    return absl::InvalidArgumentError(
        "kv cache: every dimension must be positive");
  }
  const int64_t floats =
      s.num_blocks * s.n_layers * 2 * s.n_kv_heads * s.block_size * s.head_dim;
  std::unique_ptr<float[]> arena(new (std::nothrow) float[floats]());
  if (!arena) {
    return absl::ResourceExhaustedError(
        absl::StrCat("kv cache: cannot allocate ", floats * 4, " bytes"));
  }
  return std::unique_ptr<KvCache>(new KvCache(s, std::move(arena)));
}

}  // namespace lumen::engine
