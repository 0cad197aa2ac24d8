#pragma once
// GgufWriter builds a GGUF v3 file: metadata first, then tensors, written in
// one pass. Used by `lumen model synth` and `convert-llama2c`.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/gguf/gguf_file.h"

namespace lumen::engine {

class GgufWriter {
 public:
  void SetString(std::string key, std::string value);
  void SetUint32(std::string key, uint32_t value);
  void SetInt32(std::string key, int32_t value);
  void SetFloat32(std::string key, float value);
  void SetBool(std::string key, bool value);
  void SetStringArray(std::string key, std::vector<std::string> values);
  void SetFloat32Array(std::string key, std::vector<float> values);
  void SetInt32Array(std::string key, std::vector<int32_t> values);
  // Copies a value (of any type, arrays included) from another file.
  void CopyValue(std::string key, const GgufValue& value);

  // `dims` in ggml order (dims[0] contiguous); `data` must hold exactly the
  // tensor's byte size for `type`.
  absl::Status AddTensor(std::string name, GgmlType type,
                         std::vector<int64_t> dims, std::vector<uint8_t> data);

  // Writes the file (alignment 32). Internal error naming the path on I/O
  // failure.
  absl::Status Write(const std::string& path) const;

 private:
  struct Entry {
    std::string key;
    std::string encoded;  // value type + value, already serialized
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
  };
  void Set(std::string key, std::string encoded);
  std::vector<Entry> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace lumen::engine
