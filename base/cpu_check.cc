// Runs before any static initializer of the program (priority 101) and before
// main, in a translation unit compiled for baseline x86-64, so that a CPU
// without AVX2/FMA/F16C gets a clear message instead of SIGILL.
#include <cpuid.h>

#include <cstdio>
#include <cstdlib>

namespace {

bool CpuHasAvx2FmaF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool fma = ecx & (1u << 12);
  const bool osxsave = ecx & (1u << 27);
  const bool avx = ecx & (1u << 28);
  const bool f16c = ecx & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return false;
  // The OS must save the ymm state (XCR0 bits 1 and 2).
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 6u) != 6u) return false;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  return ebx & (1u << 5);
}

__attribute__((constructor(101))) void RequireAvx2() {
  if (CpuHasAvx2FmaF16c()) return;
  std::fputs(
      "lumen: this CPU lacks AVX2, FMA or F16C, which this build requires "
      "(x86-64-v3).\nRebuild with -DLUMEN_NATIVE=ON on this machine or run on "
      "a newer CPU.\n",
      stderr);
  std::_Exit(2);
}

}  // namespace
