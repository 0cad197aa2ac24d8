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
  // The tail past the last whole huge page is rounded up to one more when
  // that adds at most an eighth of the array, else to whole 4 KiB pages.
  // Writing a 4 KiB page the first time traps to the hypervisor on a VM: a
  // 1.4 MiB tail on each of 47 9.4 MiB arrays cost 0.1 s at first write,
  // where rounding them up cost 0.01 s (prefault_bench --mb 440 --buffers
  // 47). The bound keeps memory: rounding every array up would add 60% to
  // the 1.2 MiB Q6_K expert slices of a MoE model.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t tail = bytes % kHugePage;
  const size_t size = tail > 0 && kHugePage - tail <= bytes / 8
                          ? bytes - tail + kHugePage
                          : (bytes + page - 1) / page * page;
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
