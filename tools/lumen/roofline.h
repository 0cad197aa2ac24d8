#pragma once
// Measures this machine's limits on the spot: memory read bandwidth and FP32
// FMA peak, with the threads the engine will use.

namespace lumen::tools {

// Best of several passes reading a 512 MiB buffer with all OpenMP threads.
double MeasureReadBandwidthGBs();
// Best of several runs of independent FMA chains on all OpenMP threads, with
// 512-bit vectors when the engine's kernels use AVX-512, 256-bit otherwise.
double MeasurePeakGflops();

}  // namespace lumen::tools
