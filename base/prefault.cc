#include "base/prefault.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace lumen {

namespace {

// [data, data + bytes) shrunk to whole multiples of `page`.
bool Interior(void* data, size_t bytes, uintptr_t page, uintptr_t* first,
              uintptr_t* last) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(data);
  *first = (start + page - 1) & ~(page - 1);
  *last = (start + bytes) & ~(page - 1);
  return data != nullptr && *last > *first;
}

}  // namespace

bool AdviseHugePages(void* data, size_t bytes) {
#ifdef MADV_HUGEPAGE
  uintptr_t first, last;
  if (!Interior(data, bytes, uintptr_t{2} << 20, &first, &last)) return false;
  return ::madvise(reinterpret_cast<void*>(first), last - first,
                   MADV_HUGEPAGE) == 0;
#else
  return false;
#endif
}

bool PopulatePages(void* data, size_t bytes) {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older headers lack it
#endif
  uintptr_t first, last;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  if (!Interior(data, bytes, page, &first, &last)) return false;
  return ::madvise(reinterpret_cast<void*>(first), last - first,
                   MADV_POPULATE_WRITE) == 0;
}

void PrefaultPages(void* data, size_t bytes) {
  AdviseHugePages(data, bytes);
  PopulatePages(data, bytes);
}

}  // namespace lumen
