#pragma once
// A read-only memory mapping of a whole file, unmapped on destruction.

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

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;  // [size_], nullptr for an empty file
  size_t size_;
};

}  // namespace lumen::engine
