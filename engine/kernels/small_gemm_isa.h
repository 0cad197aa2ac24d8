#pragma once
// Instruction-set variants of the small-M kernels. SmallGemmF32
// (small_gemm.h) dispatches here; callers never pick one themselves.

#include <cstdint>

namespace lumen::engine::kernels {

enum class SmallGemmIsa { kAvx2, kAvx512 };

// kAvx512 when the CPU and OS support AVX-512 F/BW/VL/VNNI and the
// environment does not set LUMEN_NO_AVX512; kAvx2 otherwise.
SmallGemmIsa DetectSmallGemmIsa();
// The variant in use (detected once); tests switch it to compare both.
SmallGemmIsa ActiveSmallGemmIsa();
// false (and no change) when asking for AVX-512 on a CPU without it.
bool SetSmallGemmIsa(SmallGemmIsa isa);

// Sets the variant for a scope (tests), then the one before again.
class ScopedSmallGemmIsa {
 public:
  explicit ScopedSmallGemmIsa(SmallGemmIsa isa)
      : before_(ActiveSmallGemmIsa()), ok_(SetSmallGemmIsa(isa)) {}
  ~ScopedSmallGemmIsa() { SetSmallGemmIsa(before_); }
  ScopedSmallGemmIsa(const ScopedSmallGemmIsa&) = delete;
  ScopedSmallGemmIsa& operator=(const ScopedSmallGemmIsa&) = delete;
  bool ok() const { return ok_; }

 private:
  SmallGemmIsa before_;
  bool ok_;
};

namespace avx512 {
// Precondition on top of small_gemm.h's: K % 16 == 0.
void SmallGemmF32(const float* x, int64_t M, int64_t K, const float* w,
                  int64_t N, float* y);
}  // namespace avx512

}  // namespace lumen::engine::kernels
