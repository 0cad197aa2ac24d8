// How fast fresh memory becomes usable: the first write (memset) of a new
// anonymous mapping, plain (page faults on first touch, as a std::vector
// fill does), after MADV_HUGEPAGE, after MADV_POPULATE_WRITE, and after both
// (lumen::PrefaultPages, base/prefault.h). Every case gets its own fresh
// mapping; the order of the cases rotates from round to round.
// With --buffers B, the same memory is then also taken as B buffers the
// way model weights are: std::vectors prefaulted (ReservePrefaulted) against
// PageArrays (base/page_array.h), alternating.
//   prefault_bench [--mb N] [--rounds R] [--buffers B]

#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/flags.h"
#include "base/page_array.h"
#include "base/prefault.h"

namespace {

struct Case {
  const char* name;
  bool huge, populate;
};

// Seconds from the madvise calls to the end of the first memset; -1 when
// the mapping fails. *refused: a madvise the case asked for failed.
double FirstWriteSeconds(size_t bytes, const Case& c, bool* refused) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  const auto start = std::chrono::steady_clock::now();
  *refused = false;
  if (c.huge) *refused |= !lumen::AdviseHugePages(p, bytes);
  if (c.populate) *refused |= !lumen::PopulatePages(p, bytes);
  std::memset(p, 1, bytes);
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ::munmap(p, bytes);
  return s;
}

// Seconds to get `count` buffers of `bytes` each ready (populate) and to
// write them the first time, all kept until the end. False when out of
// memory.
bool BufferSeconds(size_t count, size_t bytes, bool page_arrays,
                   double* populate, double* write) {
  std::vector<std::vector<uint8_t>> vectors(count);
  std::vector<lumen::PageArray<uint8_t>> arrays(count);
  *populate = *write = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    uint8_t* data = nullptr;
    if (page_arrays) {
      auto zeros = lumen::PageArray<uint8_t>::Zeros(bytes);
      if (!zeros.ok()) return false;
      arrays[i] = std::move(*zeros);
      data = arrays[i].data();
    } else {
      lumen::ReservePrefaulted(vectors[i], bytes);
    }
    const auto populated = std::chrono::steady_clock::now();
    if (page_arrays) {
      std::memset(data, 1, bytes);
    } else {
      vectors[i].resize(bytes, 1);  // as the loader's vectors were filled
    }
    const auto written = std::chrono::steady_clock::now();
    *populate += std::chrono::duration<double>(populated - start).count();
    *write += std::chrono::duration<double>(written - populated).count();
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t mb = 512, rounds = 3, buffers = 0;
  lumen::FlagSet flags("prefault_bench [--mb N] [--rounds R] [--buffers B]");
  flags.Int("mb", &mb, "size of each fresh buffer in MiB");
  flags.Int("rounds", &rounds, "rounds of all four cases");
  flags.Int("buffers", &buffers,
            "also take the memory as this many buffers, std::vector against "
            "PageArray (0: not)");
  if (auto s = flags.Parse(argc, argv); !s.ok() || flags.help_requested()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(),
                 flags.Help().c_str());
    return s.ok() ? 0 : 2;
  }
  if (mb <= 0 || rounds <= 0 || buffers < 0) {
    std::fprintf(
        stderr, "--mb and --rounds must be positive, --buffers not negative\n");
    return 2;
  }
  const Case cases[] = {{"plain (page faults)", false, false},
                        {"huge pages", true, false},
                        {"populate", false, true},
                        {"huge pages + populate", true, true}};
  const size_t bytes = static_cast<size_t>(mb) << 20;
  std::printf("%-5s %-24s %8s %8s\n", "round", "first write of fresh memory",
              "s", "GB/s");
  for (int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < 4; ++i) {
      const Case& c = cases[(i + r) % 4];
      bool refused = false;
      const double s = FirstWriteSeconds(bytes, c, &refused);
      if (s < 0) {
        std::fprintf(stderr, "cannot map %lld MiB\n",
                     static_cast<long long>(mb));
        return 1;
      }
      std::printf("%-5lld %-24s %8.3f %8.2f%s\n", static_cast<long long>(r),
                  c.name, s, bytes / s / 1e9,
                  refused ? "  (madvise refused)" : "");
    }
  }
  if (buffers == 0) return 0;
  const size_t each = bytes / buffers;
  if (each == 0) {
    std::fprintf(stderr, "--buffers must not exceed the bytes of --mb\n");
    return 2;
  }
  std::printf("\n%-5s %lld buffers of %.1f MiB %13s %12s\n", "round",
              static_cast<long long>(buffers), each / 1048576.0, "populate s",
              "first write s");
  for (int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < 2; ++i) {
      const bool page_arrays = (i + r) % 2 == 1;
      double populate, write;
      if (!BufferSeconds(buffers, each, page_arrays, &populate, &write)) {
        std::fprintf(stderr, "out of memory\n");
        return 1;
      }
      std::printf("%-5lld %-28s %10.3f %12.3f\n", static_cast<long long>(r),
                  page_arrays ? "PageArray" : "std::vector, prefaulted",
                  populate, write);
    }
  }
  return 0;
}
