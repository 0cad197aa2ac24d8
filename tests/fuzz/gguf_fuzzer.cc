// libFuzzer target: any byte string must parse or fail with a Status, never
// crash; on success every tensor's bytes must be readable.
#include <cstddef>
#include <cstdint>

#include "engine/gguf/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = lumen::engine::GgufFile::Parse({data, size});
  if (!file.ok()) return 0;
  uint64_t sum = 0;
  for (const auto& t : (*file)->tensors()) {
    auto bytes = (*file)->TensorData(t);
    if (!bytes.empty()) sum += bytes.front() + bytes.back();
  }
  for (const auto& kv : (*file)->metadata()) sum += kv.key.size();
  return sum == 0xFFFFFFFFFFFFFFFFull ? 1 : 0;
}
