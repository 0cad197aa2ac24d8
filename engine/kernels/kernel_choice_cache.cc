#include "engine/kernels/kernel_choice_cache.h"

#include <cpuid.h>
#include <fcntl.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/openmp_wait.h"
#include "dnnl.hpp"
#include "engine/kernels/small_gemm_isa.h"

namespace lumen::engine::kernels {

namespace {

constexpr char kSeparator[] = " -> ";

// The CPU's brand string (CPUID leaves 0x80000002-4), e.g. "AMD EPYC 9R14
// 96-Core Processor".
std::string CpuBrand() {
  unsigned int max_leaf = __get_cpuid_max(0x80000000, nullptr);
  if (max_leaf < 0x80000004) return "unknown";
  char brand[49] = {};
  for (unsigned int i = 0; i < 3; ++i) {
    unsigned int r[4];
    __get_cpuid(0x80000002 + i, &r[0], &r[1], &r[2], &r[3]);
    std::memcpy(brand + 16 * i, r, 16);
  }
  return std::string(absl::StripAsciiWhitespace(brand));
}

// Family, model and stepping (CPUID leaf 1, extended fields added): virtual
// machines often report a bare brand such as "AMD EPYC" for several
// generations.
std::string CpuSignature() {
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return "unknown";
  unsigned int family = (a >> 8) & 0xF, model = (a >> 4) & 0xF;
  if (family == 0xF) family += (a >> 20) & 0xFF;
  if (family == 0x6 || family >= 0xF) model += ((a >> 16) & 0xF) << 4;
  return absl::StrCat(family, ".", model, ".", a & 0xF);
}

// This program's build: its size and modification time, so that a rebuilt
// or upgraded binary (other kernels) times again, once.
std::string BuildKey() {
  struct stat st;
  if (stat("/proc/self/exe", &st) != 0) return "unknown";
  return absl::StrCat(st.st_size, "@", st.st_mtim.tv_sec);
}

std::string MachineKey(int threads) {
  const dnnl_version_t* v = dnnl_version();
  return absl::StrCat(
      "cpu=", CpuBrand(), ";cpuid=", CpuSignature(),
      ";cpus=", omp_get_num_procs(), ";isa=",
      ActiveSmallGemmIsa() == SmallGemmIsa::kAvx512 ? "avx512" : "avx2",
      ";threads=", threads, ";wait=", OpenMpWaitPolicy(), ";dnnl=", v->major,
      ".", v->minor, ".", v->patch, ";build=", BuildKey());
}

}  // namespace

absl::StatusOr<std::unique_ptr<KernelChoiceCache>> KernelChoiceCache::Open(
    std::string path, int threads) {
  std::unique_ptr<KernelChoiceCache> cache(
      new KernelChoiceCache(std::move(path), MachineKey(threads)));
  std::error_code ec;
  if (!std::filesystem::exists(cache->path_, ec) && !ec) return cache;
  std::ifstream in(cache->path_);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", cache->path_, ": ", std::strerror(errno)));
  }
  std::string line;
  while (std::getline(in, line)) {
    const size_t at = line.rfind(kSeparator);
    int crossover;
    if (at == std::string::npos || at == 0 ||
        !absl::SimpleAtoi(line.substr(at + sizeof(kSeparator) - 1),
                          &crossover) ||
        crossover < 0) {
      cache->changed_ = true;  // dropped at the next save
      continue;
    }
    cache->entries_[line.substr(0, at)] = crossover;
  }
  return cache;
}

std::optional<int> KernelChoiceCache::Find(const std::string& matrix_key) {
  auto it = entries_.find(absl::StrCat(machine_, ";", matrix_key));
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second;
}

void KernelChoiceCache::Put(const std::string& matrix_key, int crossover) {
  auto [it, added] =
      entries_.try_emplace(absl::StrCat(machine_, ";", matrix_key), crossover);
  changed_ |= added || it->second != crossover;
  it->second = crossover;
}

absl::Status KernelChoiceCache::Save() {
  if (!changed_) return absl::OkStatus();
  const std::filesystem::path file(path_);
  std::error_code ec;
  if (file.has_parent_path())
    std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create ", file.parent_path().string(), ": ", ec.message()));
  }
  std::string text;
  for (const auto& [key, crossover] : entries_)
    absl::StrAppend(&text, key, kSeparator, crossover, "\n");
  // A unique temporary file beside the target, synced, then renamed over
  // it: readers see the old file or the new one, never a part.
  std::string tmp = absl::StrCat(path_, ".XXXXXX");
  const int fd = mkstemp(tmp.data());
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  int err = 0;
  for (size_t done = 0; err == 0 && done < text.size();) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n == 0 || errno != EINTR) {
      err = n == 0 ? EIO : errno;
    }
  }
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    unlink(tmp.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(err)));
  }
  if (rename(tmp.c_str(), path_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    unlink(tmp.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("cannot replace ", path_, ": ", why));
  }
  changed_ = false;
  return absl::OkStatus();
}

}  // namespace lumen::engine::kernels
