#pragma once
// The ggml tensor types that can appear in a GGUF file: ids, names, block
// geometry. Knowing a type here says nothing about whether the engine can load
// it; that is the model loader's decision.

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace lumen::engine {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

struct GgmlTypeTraits {
  absl::string_view name;  // as ggml spells it: "f32", "q8_0", ...
  uint32_t block_size;     // elements per block
  uint32_t type_size;      // bytes per block
};

// Traits of the type with this id, or nullopt when the id is not a ggml type
// (including the retired ids 4, 5, 31-33 and 36-38).
std::optional<GgmlTypeTraits> GgmlTypeTraitsOf(uint32_t type_id);

// "f32", "q8_0", ...; "unknown(<id>)" for ids that are not ggml types.
std::string GgmlTypeName(GgmlType type);

}  // namespace lumen::engine
