#pragma once
// Large buffers filled at load (the model weights, the step's activations)
// get their memory mapped up front instead of by one page fault per 4 KiB
// on first write. On a virtual machine each fault traps to the hypervisor.
// On the 2-core test VM (tools/bench/prefault_bench.cc, 512 MiB): first
// writes to fresh 4 KiB pages ran at 0.36-0.37 GB/s, populated 4 KiB pages
// at 0.65, huge pages at 11-12 when the kernel had free 2 MiB pages and at
// 0.57-0.66 when it had to make them. Loading the 440 MB fp32 model took
// lumend 2.1-2.3 s with plain faults and 1.05-1.8 s prefaulted.

#include <cstddef>
#include <vector>

namespace lumen {

// Asks for transparent huge pages (MADV_HUGEPAGE: 512-fold fewer faults
// and TLB misses) on the whole 2 MiB pages inside [data, data + bytes),
// before they are first touched. False when the kernel refused.
bool AdviseHugePages(void* data, size_t bytes);

// Maps the whole pages inside [data, data + bytes) now, writable, in one
// call (MADV_POPULATE_WRITE, Linux 5.14). Contents are unchanged. False
// when the kernel refused: the pages then fault in on first touch.
bool PopulatePages(void* data, size_t bytes);

// Both, best effort.
void PrefaultPages(void* data, size_t bytes);

// Reserves room for at least n elements in an empty vector and prefaults
// the first n.
template <class T>
void ReservePrefaulted(std::vector<T>& v, size_t n) {
  v.reserve(n);
  PrefaultPages(v.data(), n * sizeof(T));
}

// v.assign(n, value) into prefaulted storage.
template <class T>
void AssignPrefaulted(std::vector<T>& v, size_t n, const T& value = T{}) {
  ReservePrefaulted(v, n);
  v.assign(n, value);
}

}  // namespace lumen
