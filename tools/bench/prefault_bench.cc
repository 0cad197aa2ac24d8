// How fast fresh memory becomes usable: the first write (memset) of a new
// anonymous mapping, plain (page faults on first touch, as a std::vector
// fill does), after MADV_HUGEPAGE, after MADV_POPULATE_WRITE, and after both
// (lumen::PrefaultPages, base/prefault.h). Every case gets its own fresh
// mapping; the order of the cases rotates from round to round.
//   prefault_bench [--mb N] [--rounds R]

#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "base/flags.h"
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

}  // namespace

int main(int argc, char** argv) {
  int64_t mb = 512, rounds = 3;
  lumen::FlagSet flags("prefault_bench [--mb N] [--rounds R]");
  flags.Int("mb", &mb, "size of each fresh buffer in MiB");
  flags.Int("rounds", &rounds, "rounds of all four cases");
  if (auto s = flags.Parse(argc, argv); !s.ok() || flags.help_requested()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(),
                 flags.Help().c_str());
    return s.ok() ? 0 : 2;
  }
  if (mb <= 0 || rounds <= 0) {
    std::fprintf(stderr, "--mb and --rounds must be positive\n");
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
  return 0;
}
