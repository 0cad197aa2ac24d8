#pragma once
// A read-only memory mapping of a whole file, unmapped on destruction, and
// the file kept open for copies out of it (Read).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace lumen::engine {

class MappedFile {
 public:
  // Maps `path` read-only. NotFound / PermissionDenied / Internal name the path
  // and the OS error.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(
      const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  // Copies bytes [offset, offset + out.size()) of the file into out with
  // pread: the kernel copies from the page cache through its own mapping,
  // where reading bytes() takes a page fault per 4 KiB page not yet mapped
  // (16 at a time), each a trap to the hypervisor on a VM. Safe from several
  // threads at once. DataLoss when the file has become shorter, an error
  // naming the OS error otherwise.
  absl::Status Read(uint64_t offset, std::span<uint8_t> out) const;

 private:
  MappedFile(std::string path, int fd, const uint8_t* data, size_t size)
      : path_(std::move(path)), fd_(fd), data_(data), size_(size) {}
  std::string path_;
  int fd_;
  const uint8_t* data_;  // [size_], nullptr for an empty file
  size_t size_;
};

}  // namespace lumen::engine
