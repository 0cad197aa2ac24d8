#include "base/page_array.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "base/prefault.h"

namespace lumen {

absl::StatusOr<PageMapping> PageMapping::Map(size_t bytes) {
  PageMapping m;
  if (bytes == 0) return m;
  if (bytes > SIZE_MAX / 2 - 2 * kHugePage) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map ", bytes, " bytes of memory: too large"));
  }
  // Whole 4 KiB pages: a tail past the last whole huge page stays in 4 KiB
  // pages rather than take a whole huge page more. That would save its
  // first-write traps on a VM (up to 511 per array) but add up to 2 MiB of
  // memory per array, 60% for the 1.2 MiB Q6_K expert slices of a MoE model.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t size = (bytes + page - 1) / page * page;
  // One huge page more than needed, then the unaligned head and tail go
  // back: the kernel aligns only some anonymous mappings on its own.
  void* p = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map ", bytes, " bytes of memory"));
  }
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > start) ::munmap(p, aligned - start);
  const uintptr_t end = start + size + kHugePage;
  if (end > aligned + size) {
    ::munmap(reinterpret_cast<void*>(aligned + size), end - aligned - size);
  }
  m.data_ = reinterpret_cast<void*>(aligned);
  m.bytes_ = size;
  // Advice on the whole mapping, tail included, keeps it one VMA: an
  // array per MoE expert matrix must not double the process's map count.
#ifdef MADV_HUGEPAGE
  ::madvise(m.data_, m.bytes_, MADV_HUGEPAGE);  // fine to be refused
#endif
  // On one thread: two threads populating at once took 0.45-0.63 s for the
  // 110M fp32 model's matrices where one took 0.03 s.
  PopulatePages(m.data_, m.bytes_);
  return m;
}

PageMapping& PageMapping::operator=(PageMapping&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, bytes_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

PageMapping::~PageMapping() {
  if (data_ != nullptr) ::munmap(data_, bytes_);
}

}  // namespace lumen
