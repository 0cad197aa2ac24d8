#include "engine/quant/quant_type.h"

#include "absl/strings/str_cat.h"
#include "engine/quant/i_quants.h"
#include "engine/quant/k_quants.h"
#include "engine/quant/legacy_quants.h"

namespace lumen::engine::quant {

namespace {

constexpr QuantType kTypes[] = {
    {GgmlType::kQ4_0, 32, 18, DequantizeRowQ4_0, QuantizeRowQ4_0},
    {GgmlType::kQ4_1, 32, 20, DequantizeRowQ4_1, QuantizeRowQ4_1},
    {GgmlType::kQ5_0, 32, 22, DequantizeRowQ5_0, QuantizeRowQ5_0},
    {GgmlType::kQ5_1, 32, 24, DequantizeRowQ5_1, QuantizeRowQ5_1},
    {GgmlType::kQ8_0, 32, 34, DequantizeRowQ8_0, QuantizeRowQ8_0},
    {GgmlType::kQ2_K, 256, 84, DequantizeRowQ2_K, QuantizeRowQ2_K},
    {GgmlType::kQ3_K, 256, 110, DequantizeRowQ3_K, QuantizeRowQ3_K},
    {GgmlType::kQ4_K, 256, 144, DequantizeRowQ4_K, QuantizeRowQ4_K},
    {GgmlType::kQ5_K, 256, 176, DequantizeRowQ5_K, QuantizeRowQ5_K},
    {GgmlType::kQ6_K, 256, 210, DequantizeRowQ6_K, QuantizeRowQ6_K},
    {GgmlType::kIQ4_NL, 32, 18, DequantizeRowIQ4_NL, QuantizeRowIQ4_NL},
    {GgmlType::kIQ4_XS, 256, 136, DequantizeRowIQ4_XS, QuantizeRowIQ4_XS},
};

}  // namespace

const QuantType* FindQuantType(GgmlType type) {
  for (const QuantType& t : kTypes) {
    if (t.type == type) return &t;
  }
  return nullptr;
}

std::string SupportedTypeList() {
  std::string s = "f32, f16, bf16";
  for (const QuantType& t : kTypes)
    absl::StrAppend(&s, ", ", GgmlTypeName(t.type));
  return s;
}

}  // namespace lumen::engine::quant
