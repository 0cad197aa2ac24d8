#pragma once
// Arrays that are filled once at load and then read on every step (model
// weights), each in its own anonymous mapping that starts on a 2 MiB
// boundary, so that all of it but the tail past its last whole 2 MiB can be
// transparent huge pages. A std::vector's block starts 16 bytes into
// glibc's mapping, which leaves the first and last 2 MiB of each matrix in
// 4 KiB pages, and on a VM each first write of one traps to the hypervisor.
// 47 arrays of 10 MiB (about the 110M fp32 model's matrices), on the 2-core
// test VM (`prefault_bench --mb 470 --buffers 47`): prefaulted std::vectors
// took 0.053-0.511 s to populate and 0.143-0.146 s to write the first time,
// PageArrays 0.028-0.191 s and 0.013 s.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"

namespace lumen {

// One 2 MiB-aligned anonymous mapping, unmapped on destruction.
class PageMapping {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;

  PageMapping() = default;
  // `bytes` rounded up to whole pages, starting on a 2 MiB boundary, zero
  // (the kernel's fresh pages), huge pages advised and, best effort, mapped
  // now (base/prefault.h). Nothing is mapped for 0 bytes. ResourceExhausted
  // when the kernel has no room.
  static absl::StatusOr<PageMapping> Map(size_t bytes);
  PageMapping(PageMapping&& other) noexcept { *this = std::move(other); }
  PageMapping& operator=(PageMapping&& other) noexcept;
  PageMapping(const PageMapping&) = delete;
  PageMapping& operator=(const PageMapping&) = delete;
  ~PageMapping();

  void* data() const { return data_; }
  // What the mapping holds: the bytes asked for, rounded up.
  size_t mapped_bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// n elements of T in a PageMapping.
template <class T>
class PageArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  PageArray() = default;
  // n zero-valued elements (all-zero bytes).
  static absl::StatusOr<PageArray> Zeros(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) {
      return absl::ResourceExhaustedError(
          "cannot map an array of more than SIZE_MAX bytes");
    }
    auto mapping = PageMapping::Map(n * sizeof(T));
    if (!mapping.ok()) return mapping.status();
    PageArray a;
    a.mapping_ = std::move(*mapping);
    a.size_ = n;
    return a;
  }
  // A copy of `values` (tests, and arrays made from other arrays).
  static absl::StatusOr<PageArray> CopyOf(std::span<const T> values) {
    auto a = Zeros(values.size());
    if (a.ok() && !values.empty()) {
      std::memcpy(a->data(), values.data(), values.size() * sizeof(T));
    }
    return a;
  }
  PageArray(PageArray&& other) noexcept
      : mapping_(std::move(other.mapping_)),
        size_(std::exchange(other.size_, 0)) {}
  PageArray& operator=(PageArray&& other) noexcept {
    mapping_ = std::move(other.mapping_);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  T* data() { return static_cast<T*>(mapping_.data()); }
  const T* data() const { return static_cast<const T*>(mapping_.data()); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Memory the array takes (its mapping, rounded up to whole pages).
  size_t mapped_bytes() const { return mapping_.mapped_bytes(); }
  std::span<T> span() { return {data(), size_}; }
  std::span<const T> span() const { return {data(), size_}; }

 private:
  PageMapping mapping_;
  size_t size_ = 0;
};

}  // namespace lumen
