#include "engine/kv_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/kernels/cpu_ops.h"

namespace lumen::engine {

const char* KvElementName(KvElement e) {
  switch (e) {
    case KvElement::kF32:
      return "f32";
    case KvElement::kF16:
      return "f16";
    case KvElement::kQ8_0:
      return "q8_0";
  }
  return "?";
}

absl::StatusOr<KvElement> ParseKvElement(std::string_view name) {
  if (name == "f32") return KvElement::kF32;
  if (name == "f16") return KvElement::kF16;
  if (name == "q8_0") return KvElement::kQ8_0;
  return absl::InvalidArgumentError(
      absl::StrCat("KV cache type \"", std::string(name),
                   "\" is not one of f32, f16, q8_0"));
}

int64_t KvRowBytes(KvElement e, int64_t head_dim) {
  switch (e) {
    case KvElement::kF32:
      return 4 * head_dim;
    case KvElement::kF16:
      return 2 * head_dim;
    case KvElement::kQ8_0: {
      const int64_t block = KvQ8BlockLength(head_dim);
      return head_dim + 2 * ((head_dim + block - 1) / block);
    }
  }
  return 0;
}

absl::Status CheckKvElement(KvElement e, int64_t head_dim) {
  if (e == KvElement::kQ8_0 && head_dim > 32 && head_dim % 32 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache type q8_0 needs a head size under 32 or a multiple of 32; "
        "this model's heads are ",
        head_dim, " wide (use f16)"));
  }
  return absl::OkStatus();
}

void StoreKvRow(KvElement e, const float* x, int64_t head_dim, uint8_t* row) {
  switch (e) {
    case KvElement::kF32:
      std::memcpy(row, x, head_dim * sizeof(float));
      return;
    case KvElement::kF16:
      kernels::FloatsToHalves(x, reinterpret_cast<uint16_t*>(row), head_dim);
      return;
    case KvElement::kQ8_0: {
      const int64_t block = KvQ8BlockLength(head_dim);
      auto* codes = reinterpret_cast<int8_t*>(row);
      uint8_t* scales = row + head_dim;
      for (int64_t b0 = 0, i = 0; b0 < head_dim; b0 += block, ++i) {
        float amax = 0.0f;
        for (int64_t j = b0; j < b0 + block; ++j)
          amax = std::max(amax, std::fabs(x[j]));
        // As ggml: codes from the exact scale, the fp16-rounded one stored.
        // A block with a NaN or infinity (or beyond fp16's range) reads back
        // as NaN, as it would from an f16 cache, rather than as numbers.
        const bool finite = std::isfinite(amax) && amax / 127.0f <= 65504.0f &&
                            std::none_of(x + b0, x + b0 + block,
                                         [](float v) { return std::isnan(v); });
        const float d = finite ? amax / 127.0f : NAN;
        const float inv = finite && d > 0.0f ? 1.0f / d : 0.0f;
        for (int64_t j = b0; j < b0 + block; ++j) {
          codes[j] =
              static_cast<int8_t>(finite ? std::nearbyint(x[j] * inv) : 0.0f);
        }
        uint16_t h;
        kernels::FloatsToHalves(&d, &h, 1);
        std::memcpy(scales + 2 * i, &h, 2);
      }
      return;
    }
  }
}

void LoadKvRow(KvElement e, const uint8_t* row, int64_t head_dim, float* x) {
  switch (e) {
    case KvElement::kF32:
      std::memcpy(x, row, head_dim * sizeof(float));
      return;
    case KvElement::kF16:
      kernels::HalvesToFloats(reinterpret_cast<const uint16_t*>(row), x,
                              head_dim);
      return;
    case KvElement::kQ8_0: {
      const int64_t block = KvQ8BlockLength(head_dim);
      for (int64_t i = 0; i * block < head_dim; ++i)
        LoadKvQ8Block(row, head_dim, i, x + i * block);
      return;
    }
  }
}

void LoadKvQ8Block(const uint8_t* row, int64_t head_dim, int64_t index,
                   float* x) {
  const int64_t block = KvQ8BlockLength(head_dim);
  const auto* codes = reinterpret_cast<const int8_t*>(row) + index * block;
  uint16_t h;
  std::memcpy(&h, row + head_dim + 2 * index, 2);
  float d;
  kernels::HalvesToFloats(&h, &d, 1);
  for (int64_t j = 0; j < block; ++j) x[j] = d * codes[j];
}

int64_t KvCache::BlocksForBytes(const KvCacheShape& s, int64_t bytes) {
  const int64_t per_block = s.n_kv_heads * s.block_size *
                            KvRowBytes(s.element, s.head_dim) * 2 * s.n_layers;
  return per_block > 0 ? bytes / per_block : 0;
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(
    const KvCacheShape& s) {
  if (s.n_layers <= 0 || s.n_kv_heads <= 0 || s.head_dim <= 0 ||
      s.block_size <= 0 || s.num_blocks <= 0) {
    return absl::InvalidArgumentError(
        "kv cache: every dimension must be positive");
  }
  if (absl::Status st = CheckKvElement(s.element, s.head_dim); !st.ok())
    return st;
  const int64_t rows =
      s.num_blocks * s.n_layers * 2 * s.n_kv_heads * s.block_size;
  // Anonymous pages read as zero and are backed on first touch: the arena
  // costs nothing at load (zeroing 1 GiB took seconds of page faults; the
  // idle engine backs it later, PopulateSome), and huge pages cut the
  // faults and TLB misses of attention 512-fold.
  const size_t bytes = static_cast<size_t>(rows) *
                       static_cast<size_t>(KvRowBytes(s.element, s.head_dim));
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
  while (PopulateSome(total_bytes())) {
  }
  if (populate_refused_) {
    return absl::UnavailableError(absl::StrCat(
        "kv cache: cannot populate the arena: ", strerror(populate_errno_)));
  }
  return absl::OkStatus();
}

bool KvCache::PopulateSome(int64_t max_bytes) {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older headers lack it
#endif
  constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  const int64_t total = total_bytes();
  if (populate_refused_ || populated_bytes_ >= total) return false;
  max_bytes = std::clamp<int64_t>(max_bytes, 1, total - populated_bytes_);
  // The installment ends on a 2 MiB boundary of the address space (or at
  // the arena's end), so that the next one starts page-aligned, as madvise
  // needs, and on a huge page of its own.
  const uintptr_t base = reinterpret_cast<uintptr_t>(arena_.get());
  const uintptr_t want =
      base + static_cast<uintptr_t>(populated_bytes_ + max_bytes);
  const int64_t end = std::min<int64_t>(
      total,
      static_cast<int64_t>(((want + kHugePage - 1) & ~(kHugePage - 1)) - base));
  if (madvise(arena_.get() + populated_bytes_,
              static_cast<size_t>(end - populated_bytes_),
              MADV_POPULATE_WRITE) != 0) {
    populate_refused_ = true;
    populate_errno_ = errno;
    return false;
  }
  populated_bytes_ = end;
  return populated_bytes_ < total;
}

void KvCache::ArenaUnmap::operator()(uint8_t* p) const { munmap(p, bytes); }

}  // namespace lumen::engine
