#include "engine/gguf/ggml_type.h"

#include <string>

namespace lumen::engine {

std::optional<GgmlTypeTraits> GgmlTypeTraitsOf(uint32_t type_id) {
  switch (static_cast<GgmlType>(type_id)) {
    case GgmlType::kF32:
      return GgmlTypeTraits{"f32", 1, 4};
    case GgmlType::kF16:
      return GgmlTypeTraits{"f16", 1, 2};
    case GgmlType::kQ4_0:
      return GgmlTypeTraits{"q4_0", 32, 18};
    case GgmlType::kQ4_1:
      return GgmlTypeTraits{"q4_1", 32, 20};
    case GgmlType::kQ5_0:
      return GgmlTypeTraits{"q5_0", 32, 22};
    case GgmlType::kQ5_1:
      return GgmlTypeTraits{"q5_1", 32, 24};
    case GgmlType::kQ8_0:
      return GgmlTypeTraits{"q8_0", 32, 34};
    case GgmlType::kQ8_1:
      return GgmlTypeTraits{"q8_1", 32, 36};
    case GgmlType::kQ2_K:
      return GgmlTypeTraits{"q2_K", 256, 84};
    case GgmlType::kQ3_K:
      return GgmlTypeTraits{"q3_K", 256, 110};
    case GgmlType::kQ4_K:
      return GgmlTypeTraits{"q4_K", 256, 144};
    case GgmlType::kQ5_K:
      return GgmlTypeTraits{"q5_K", 256, 176};
    case GgmlType::kQ6_K:
      return GgmlTypeTraits{"q6_K", 256, 210};
    case GgmlType::kQ8_K:
      return GgmlTypeTraits{"q8_K", 256, 292};
    case GgmlType::kIQ2_XXS:
      return GgmlTypeTraits{"iq2_xxs", 256, 66};
    case GgmlType::kIQ2_XS:
      return GgmlTypeTraits{"iq2_xs", 256, 74};
    case GgmlType::kIQ3_XXS:
      return GgmlTypeTraits{"iq3_xxs", 256, 98};
    case GgmlType::kIQ1_S:
      return GgmlTypeTraits{"iq1_s", 256, 50};
    case GgmlType::kIQ4_NL:
      return GgmlTypeTraits{"iq4_nl", 32, 18};
    case GgmlType::kIQ3_S:
      return GgmlTypeTraits{"iq3_s", 256, 110};
    case GgmlType::kIQ2_S:
      return GgmlTypeTraits{"iq2_s", 256, 82};
    case GgmlType::kIQ4_XS:
      return GgmlTypeTraits{"iq4_xs", 256, 136};
    case GgmlType::kI8:
      return GgmlTypeTraits{"i8", 1, 1};
    case GgmlType::kI16:
      return GgmlTypeTraits{"i16", 1, 2};
    case GgmlType::kI32:
      return GgmlTypeTraits{"i32", 1, 4};
    case GgmlType::kI64:
      return GgmlTypeTraits{"i64", 1, 8};
    case GgmlType::kF64:
      return GgmlTypeTraits{"f64", 1, 8};
    case GgmlType::kIQ1_M:
      return GgmlTypeTraits{"iq1_m", 256, 56};
    case GgmlType::kBF16:
      return GgmlTypeTraits{"bf16", 1, 2};
    case GgmlType::kTQ1_0:
      return GgmlTypeTraits{"tq1_0", 256, 54};
    case GgmlType::kTQ2_0:
      return GgmlTypeTraits{"tq2_0", 256, 66};
    case GgmlType::kMXFP4:
      return GgmlTypeTraits{"mxfp4", 32, 17};
  }
  return std::nullopt;
}

std::string GgmlTypeName(GgmlType type) {
  auto traits = GgmlTypeTraitsOf(static_cast<uint32_t>(type));
  if (!traits) {
    return "unknown(" + std::to_string(static_cast<uint32_t>(type)) + ")";
  }
  return std::string(traits->name);
}

}  // namespace lumen::engine
