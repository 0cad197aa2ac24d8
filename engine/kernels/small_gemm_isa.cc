// Which instruction-set variant the kernels use (small_gemm_isa.h); shared by
// the small-M kernels and the packed-weight kernels (engine/quant).

#include "engine/kernels/small_gemm_isa.h"

#include <atomic>
#include <cstdlib>

namespace lumen::engine::kernels {

namespace {

// AVX-512 F/BW/VL/VNNI with OS support for the vector state (libgcc checks
// XCR0).
bool CpuHasAvx512Kernels() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512vnni");
}

std::atomic<SmallGemmIsa>& Isa() {
  static std::atomic<SmallGemmIsa> isa{DetectSmallGemmIsa()};
  return isa;
}

}  // namespace

SmallGemmIsa DetectSmallGemmIsa() {
  const char* off = std::getenv("LUMEN_NO_AVX512");
  const bool disabled = off != nullptr && *off != '\0' && *off != '0';
  return CpuHasAvx512Kernels() && !disabled ? SmallGemmIsa::kAvx512
                                            : SmallGemmIsa::kAvx2;
}

SmallGemmIsa ActiveSmallGemmIsa() { return Isa().load(); }

bool SetSmallGemmIsa(SmallGemmIsa isa) {
  if (isa == SmallGemmIsa::kAvx512 && !CpuHasAvx512Kernels()) return false;
  Isa().store(isa);
  return true;
}

}  // namespace lumen::engine::kernels
