#pragma once
// GgufFile: a parsed GGUF (v2/v3) file. Metadata strings and TensorData point
// into the memory-mapped file; nothing is copied at parse time. Weights are
// copied out with ReadTensorBytes (pread). Every structural problem is
// reported as InvalidArgument naming the problem and its byte offset.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/gguf/ggml_type.h"
#include "engine/gguf/mapped_file.h"

namespace lumen::engine {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

absl::string_view GgufValueTypeName(GgufValueType type);

// One metadata value. Scalars live in the union, strings view the file,
// arrays hold their elements (which may be arrays again).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  union {
    uint64_t u64;
    int64_t i64;
    double f64;
    bool b;
  };
  absl::string_view str;                            // kString
  GgufValueType elem_type = GgufValueType::kUint8;  // kArray
  std::vector<GgufValue> elems;                     // kArray

  GgufValue() : u64(0) {}
  bool is_integer() const;
  bool is_float() const {
    return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
  }
};

struct GgufKeyValue {
  absl::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  absl::string_view name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the contiguous one
  GgmlType type;
  uint64_t offset;  // from the start of the data section
  uint64_t num_elements;
  uint64_t num_bytes;
};

class GgufFile {
 public:
  // Maps and parses the file at `path`.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(
      const std::string& path);
  // Parses bytes owned by the caller, who keeps them alive while the result
  // lives. Used by the fuzzer and tests.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Parse(
      std::span<const uint8_t> bytes);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }
  const std::string& path() const { return path_; }

  const std::vector<GgufKeyValue>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  // nullptr when absent.
  const GgufValue* Find(absl::string_view key) const;
  const GgufTensorInfo* FindTensor(absl::string_view name) const;

  // Typed lookups: NotFound when the key is missing, InvalidArgument when it
  // has an incompatible type. Integers of any width convert when in range.
  absl::StatusOr<int64_t> GetInt(absl::string_view key) const;
  absl::StatusOr<double> GetFloat(absl::string_view key) const;
  absl::StatusOr<bool> GetBool(absl::string_view key) const;
  absl::StatusOr<absl::string_view> GetString(absl::string_view key) const;
  absl::StatusOr<const GgufValue*> GetArray(absl::string_view key,
                                            GgufValueType elem_type) const;
  // Like the above but return `fallback` when the key is absent.
  absl::StatusOr<int64_t> GetIntOr(absl::string_view key,
                                   int64_t fallback) const;
  absl::StatusOr<double> GetFloatOr(absl::string_view key,
                                    double fallback) const;
  absl::StatusOr<bool> GetBoolOr(absl::string_view key, bool fallback) const;

  // The bytes of a tensor (validated at parse time to lie inside the file).
  std::span<const uint8_t> TensorData(const GgufTensorInfo& info) const;
  // Copies bytes [offset, offset + out.size()) of a tensor's data into out,
  // from the file with MappedFile::Read when it was opened from a path: the
  // way to load weights. InvalidArgument when the range is outside the
  // tensor; the file's errors (MappedFile::Read) name the tensor. Safe from
  // several threads at once.
  absl::Status ReadTensorBytes(const GgufTensorInfo& info, uint64_t offset,
                               std::span<uint8_t> out) const;

 private:
  GgufFile() = default;
  absl::Status ParseAll();

  std::unique_ptr<MappedFile> mapping_;  // null when parsing borrowed bytes
  std::span<const uint8_t> bytes_;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace lumen::engine
