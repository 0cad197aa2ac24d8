#include "tools/quantize/quantize_model.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/gguf/tensor_convert.h"
#include "engine/model/model_config.h"
#include "engine/quant/quant_type.h"

namespace lumen::tools {

namespace {

using engine::GgmlType;

// A preset: its llama_ftype and default tensor type.
struct Preset {
  const char* name;
  uint32_t ftype;
  GgmlType type;
};

constexpr Preset kPresets[] = {
    {"f32", 0, GgmlType::kF32},        {"f16", 1, GgmlType::kF16},
    {"bf16", 32, GgmlType::kBF16},     {"q4_0", 2, GgmlType::kQ4_0},
    {"q4_1", 3, GgmlType::kQ4_1},      {"q5_0", 8, GgmlType::kQ5_0},
    {"q5_1", 9, GgmlType::kQ5_1},      {"q8_0", 7, GgmlType::kQ8_0},
    {"q2_k", 10, GgmlType::kQ2_K},     {"q3_k_s", 11, GgmlType::kQ3_K},
    {"q3_k_m", 12, GgmlType::kQ3_K},   {"q3_k_l", 13, GgmlType::kQ3_K},
    {"q4_k_s", 14, GgmlType::kQ4_K},   {"q4_k_m", 15, GgmlType::kQ4_K},
    {"q5_k_s", 16, GgmlType::kQ5_K},   {"q5_k_m", 17, GgmlType::kQ5_K},
    {"q6_k", 18, GgmlType::kQ6_K},     {"iq4_nl", 25, GgmlType::kIQ4_NL},
    {"iq4_xs", 30, GgmlType::kIQ4_XS},
};

bool IsPacked(GgmlType t) { return engine::quant::FindQuantType(t) != nullptr; }

int64_t BlockElems(GgmlType t) {
  return engine::GgmlTypeTraitsOf(static_cast<uint32_t>(t))->block_size;
}

// llama.cpp's choice of "more bits" layers: the first and last eighth and
// every third layer in between.
bool UseMoreBits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

int64_t LayerOf(absl::string_view name) {
  int layer = -1;
  std::sscanf(std::string(name).c_str(), "blk.%d.", &layer);
  return layer;
}

struct ModelFacts {
  bool has_output = false;
  int64_t n_layer = 0;
  int64_t n_gqa = 1;
  int64_t n_expert = 0;
};

// llama-quantize's per-tensor choice for the presets above.
GgmlType ChooseType(const std::string& preset, GgmlType type,
                    const engine::GgufTensorInfo& t, const ModelFacts& m) {
  const std::string name(t.name);
  const int64_t nx = t.dims[0];
  const int64_t layer = LayerOf(name);
  if (name == "output.weight" ||
      (!m.has_output && name == "token_embd.weight")) {
    if (nx % BlockElems(type) != 0) {
      type = GgmlType::kQ8_0;
    } else if (type != GgmlType::kQ8_0) {
      type = GgmlType::kQ6_K;
    }
  } else if (name == "token_embd.weight") {
    // No change for these presets.
  } else if (absl::StrContains(name, "attn_v.weight")) {
    if (preset == "q2_k") {
      type = m.n_gqa >= 4 ? GgmlType::kQ4_K : GgmlType::kQ3_K;
    } else if (preset == "q3_k_m") {
      type = layer < 2 ? GgmlType::kQ5_K : GgmlType::kQ4_K;
    } else if (preset == "q3_k_l") {
      type = GgmlType::kQ5_K;
    } else if ((preset == "iq4_nl" || preset == "iq4_xs") && m.n_gqa >= 4) {
      type = GgmlType::kQ5_K;
    } else if ((preset == "q4_k_m" || preset == "q5_k_m") &&
               UseMoreBits(layer, m.n_layer)) {
      type = GgmlType::kQ6_K;
    } else if (preset == "q4_k_s" && layer < 4) {
      type = GgmlType::kQ5_K;
    }
    if (m.n_expert == 8) type = GgmlType::kQ8_0;
  } else if (absl::StrContains(name, "attn_k.weight")) {
    if (m.n_expert == 8) type = GgmlType::kQ8_0;
  } else if (absl::StrContains(name, "ffn_down")) {
    const int64_t n = m.n_layer;
    if (preset == "q2_k") {
      type = GgmlType::kQ3_K;
    } else if (preset == "q3_k_m") {
      type = layer < n / 16 ? GgmlType::kQ5_K : GgmlType::kQ4_K;
    } else if (preset == "q3_k_l") {
      type = GgmlType::kQ5_K;
    } else if (preset == "q4_k_m") {
      if (UseMoreBits(layer, n)) type = GgmlType::kQ6_K;
    } else if (layer < n / 8 && (preset == "iq4_nl" || preset == "iq4_xs")) {
      type = GgmlType::kQ5_K;
    } else if (preset == "q5_k_m" && UseMoreBits(layer, n)) {
      type = GgmlType::kQ6_K;
    } else if (preset == "q4_k_s" && layer < n / 8) {
      type = GgmlType::kQ5_K;
    }
  } else if (absl::StrContains(name, "attn_output.weight")) {
    if (m.n_expert == 8) {
      if (preset == "q2_k" || preset == "q3_k_s" || preset == "q3_k_m" ||
          preset == "iq4_nl" || preset == "q4_k_s" || preset == "q4_k_m" ||
          preset == "iq4_xs") {
        type = GgmlType::kQ5_K;
      }
    } else if (preset == "q2_k") {
      type = GgmlType::kQ3_K;
    } else if (preset == "q3_k_m") {
      type = GgmlType::kQ4_K;
    } else if (preset == "q3_k_l") {
      type = GgmlType::kQ5_K;
    }
  } else if (absl::StrContains(name, "attn_qkv.weight")) {
    if (preset == "q3_k_m" || preset == "q3_k_l") type = GgmlType::kQ4_K;
    if (preset == "q4_k_m") type = GgmlType::kQ5_K;
    if (preset == "q5_k_m") type = GgmlType::kQ6_K;
  }
  // Rows the chosen blocks do not divide fall back as llama.cpp does.
  if (nx % BlockElems(type) != 0) {
    switch (type) {
      case GgmlType::kQ2_K:
      case GgmlType::kQ3_K:
      case GgmlType::kIQ4_XS:
        type = GgmlType::kIQ4_NL;
        break;
      case GgmlType::kQ4_K:
        type = GgmlType::kQ5_0;
        break;
      case GgmlType::kQ5_K:
        type = GgmlType::kQ5_1;
        break;
      case GgmlType::kQ6_K:
        type = GgmlType::kQ8_0;
        break;
      default:
        break;
    }
    if (nx % BlockElems(type) != 0) type = GgmlType::kF16;
  }
  return type;
}

// Whether llama-quantize quantizes this tensor at all.
bool Quantizable(const engine::GgufTensorInfo& t) {
  const std::string name(t.name);
  return absl::EndsWith(name, "weight") && t.dims.size() >= 2 &&
         !absl::StrContains(name, "_norm.weight") &&
         !absl::StrContains(name, "ffn_gate_inp.weight") &&
         name != "position_embd.weight" && name != "token_types.weight";
}

// Encodes n floats (whole rows) as `type`.
std::vector<uint8_t> Encode(GgmlType type, const std::vector<float>& x,
                            int64_t cols) {
  std::vector<uint8_t> out;
  const int64_t rows = static_cast<int64_t>(x.size()) / cols;
  if (type == GgmlType::kF32) {
    out.resize(x.size() * 4);
    std::memcpy(out.data(), x.data(), out.size());
  } else if (type == GgmlType::kF16 || type == GgmlType::kBF16) {
    out.resize(x.size() * 2);
    for (size_t i = 0; i < x.size(); ++i) {
      uint16_t h;
      if (type == GgmlType::kF16) {
        h = engine::FloatToHalf(x[i]);
      } else {
        uint32_t bits;
        std::memcpy(&bits, &x[i], 4);
        bits += 0x7FFF + ((bits >> 16) & 1);  // round to nearest even
        h = static_cast<uint16_t>(bits >> 16);
      }
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  } else {
    const engine::quant::QuantType* q = engine::quant::FindQuantType(type);
    const int64_t row_bytes = engine::quant::RowBytes(*q, cols);
    out.resize(rows * row_bytes);
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t r = 0; r < rows; ++r)
      q->quantize_row(x.data() + r * cols, out.data() + r * row_bytes, cols);
  }
  return out;
}

}  // namespace

std::string QuantizePresetNames() {
  std::string s;
  for (const Preset& p : kPresets)
    absl::StrAppend(&s, s.empty() ? "" : ", ", p.name);
  return s;
}

absl::StatusOr<QuantizeReport> QuantizeModel(const engine::GgufFile& in,
                                             const std::string& out_path,
                                             const QuantizeOptions& options) {
  const std::string preset = absl::AsciiStrToLower(options.preset);
  const Preset* chosen = nullptr;
  for (const Preset& p : kPresets)
    if (preset == p.name) chosen = &p;
  if (chosen == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown --type '",
                                                   options.preset, "'; one of ",
                                                   QuantizePresetNames()));
  }
  ModelFacts facts;
  facts.has_output = in.FindTensor("output.weight") != nullptr;
  if (auto c = engine::ModelConfig::FromGguf(in); c.ok()) {
    facts.n_layer = c->n_layers;
    facts.n_gqa = c->n_kv_heads > 0 ? c->n_heads / c->n_kv_heads : 1;
    facts.n_expert = c->n_experts;
  }
  QuantizeReport report;
  report.file_type = chosen->ftype;
  engine::GgufWriter w;
  for (const auto& kv : in.metadata()) {
    if (kv.key == "general.file_type" ||
        kv.key == "general.quantization_version")
      continue;
    w.CopyValue(std::string(kv.key), kv.value);
  }
  w.SetUint32("general.quantization_version", 2);
  w.SetUint32("general.file_type", chosen->ftype);
  for (const engine::GgufTensorInfo& t : in.tensors()) {
    GgmlType type = t.type;
    if (Quantizable(t)) {
      type = chosen->type;
      if (!options.pure && IsPacked(type))
        type = ChooseType(preset, type, t, facts);
    }
    const auto src = in.TensorData(t);
    std::vector<uint8_t> data;
    if (type == t.type) {
      data.assign(src.begin(), src.end());
    } else {
      if (IsPacked(t.type) && !options.allow_requantize) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor ", t.name, " is already ", engine::GgmlTypeName(t.type),
            "; requantizing to ", engine::GgmlTypeName(type),
            " loses precision (pass --allow-requantize to do it anyway)"));
      }
      std::vector<float> x(t.num_elements);
      RETURN_IF_ERROR(
          engine::DecodeToFloat(t.type, src.data(), t.num_elements, x.data()));
      data = Encode(type, x, t.dims[0]);
      std::vector<float> back(t.num_elements);
      RETURN_IF_ERROR(engine::DecodeToFloat(type, data.data(), t.num_elements,
                                            back.data()));
      TypeError& e = report.errors[engine::GgmlTypeName(type)];
      ++e.tensors;
      e.values += t.num_elements;
      for (uint64_t i = 0; i < t.num_elements; ++i) {
        const double d = double(back[i]) - x[i];
        e.sum_sq_error += d * d;
        e.sum_sq += double(x[i]) * x[i];
      }
    }
    report.bytes_out += data.size();
    report.tensor_types.push_back({std::string(t.name), type});
    RETURN_IF_ERROR(
        w.AddTensor(std::string(t.name), type, t.dims, std::move(data)));
  }
  RETURN_IF_ERROR(w.Write(out_path));
  return report;
}

}  // namespace lumen::tools
