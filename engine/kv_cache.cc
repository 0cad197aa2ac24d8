#include "engine/kv_cache.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lumen::engine {

const char* KvElementName(KvElement e) {
  return e == KvElement::kF16 ? "f16" : "f32";
}

absl::StatusOr<KvElement> ParseKvElement(std::string_view name) {
  if (name == "f32") return KvElement::kF32;
  if (name == "f16") return KvElement::kF16;
  return absl::InvalidArgumentError(absl::StrCat(
      "KV cache type \"", std::string(name), "\" is not one of f32, f16"));
}

int64_t KvCache::BlocksForBytes(const KvCacheShape& s, int64_t bytes) {
  const int64_t per_block = s.n_kv_heads * s.block_size * s.head_dim * 2 *
                            s.n_layers * ElementBytes(s.element);
  return per_block > 0 ? bytes / per_block : 0;
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(
    const KvCacheShape& s) {
  if (s.n_layers <= 0 || s.n_kv_heads <= 0 || s.head_dim <= 0 ||
      s.block_size <= 0 || s.num_blocks <= 0) {
    return absl::InvalidArgumentError(
        "kv cache: every dimension must be positive");
  }
  const int64_t elements =
      s.num_blocks * s.n_layers * 2 * s.n_kv_heads * s.block_size * s.head_dim;
  // Anonymous pages read as zero and are backed on first touch: the arena
  // costs nothing at load (zeroing 1 GiB took seconds of page faults), and
  // huge pages cut the faults and TLB misses of attention 512-fold.
  const size_t bytes = static_cast<size_t>(elements) *
                       static_cast<size_t>(ElementBytes(s.element));
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("kv cache: cannot map ", bytes, " bytes"));
  }
  madvise(p, bytes, MADV_HUGEPAGE);  // advice: fine to be refused
  Arena arena(static_cast<uint8_t*>(p), ArenaUnmap{bytes});
  return std::unique_ptr<KvCache>(new KvCache(s, std::move(arena)));
}

absl::Status KvCache::Prefault() {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older headers lack it
#endif
  if (madvise(arena_.get(), arena_.get_deleter().bytes, MADV_POPULATE_WRITE) !=
      0) {
    return absl::UnavailableError(
        absl::StrCat("kv cache: cannot populate the arena: ", strerror(errno)));
  }
  return absl::OkStatus();
}

void KvCache::ArenaUnmap::operator()(uint8_t* p) const { munmap(p, bytes); }

}  // namespace lumen::engine
