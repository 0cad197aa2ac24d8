#pragma once
// The fp32 matrices' kernel crossovers (Linear::MeasureKernelChoice),
// measured once per machine and kept in a text file, so that a model loads
// without timing kernels again. A line is "KEY -> CROSSOVER"; the key names
// the machine (CPU brand, instruction set, threads, oneDNN version) and the
// matrix (shape, input rounding, buckets timed), so a file copied to another
// machine, or read with other --threads, only misses. Lines that do not
// parse are dropped, never trusted.

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lumen::engine::kernels {

class KernelChoiceCache {
 public:
  // Reads `path` if it exists (a missing file is an empty cache); `threads`
  // is the OpenMP team the matrices are timed and run with.
  static absl::StatusOr<std::unique_ptr<KernelChoiceCache>> Open(
      std::string path, int threads);

  std::optional<int> Find(const std::string& matrix_key);
  void Put(const std::string& matrix_key, int crossover);
  // Writes the file when Put changed it: a temporary file renamed over it,
  // so that a reader (another lumend) never sees half of it. Creates the
  // directory if needed.
  absl::Status Save();

  const std::string& path() const { return path_; }
  // Finds so far that found a crossover, and that found none (shapes timed).
  int hits() const { return hits_; }
  int misses() const { return misses_; }
  // This machine's part of every key, e.g. "cpu=AMD EPYC 9R14;isa=avx512;
  // threads=2;dnnl=2.6.0".
  const std::string& machine() const { return machine_; }

 private:
  KernelChoiceCache(std::string path, std::string machine)
      : path_(std::move(path)), machine_(std::move(machine)) {}

  std::string path_, machine_;
  std::map<std::string, int> entries_;  // whole key -> crossover
  bool changed_ = false;
  int hits_ = 0, misses_ = 0;
};

}  // namespace lumen::engine::kernels
