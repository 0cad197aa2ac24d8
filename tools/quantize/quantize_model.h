#pragma once
// Quantizing a GGUF model as llama.cpp's llama-quantize does: a preset
// (q4_k_m, q6_k, q4_0, ...) gives a default type and, unless `pure`, the
// per-tensor mix of llama.cpp (output / tied embedding at Q6_K, some attn_v
// and ffn_down layers at more bits, fallbacks for rows that blocks do not
// divide). Norms, routers and 1-D tensors keep their type. Used by
// `lumen model quantize` and tests.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"

namespace lumen::tools {

struct QuantizeOptions {
  std::string preset;             // e.g. "q4_k_m"; see QuantizePresetNames()
  bool pure = false;              // every quantized tensor in the default type
  bool allow_requantize = false;  // accept already-quantized inputs
};

// Squared error of the quantized values against the input, per output type.
struct TypeError {
  int tensors = 0;
  int64_t values = 0;
  double sum_sq_error = 0;  // sum (dequantized - input)^2
  double sum_sq = 0;        // sum input^2
  double rms() const { return values ? std::sqrt(sum_sq_error / values) : 0; }
  double relative_rms() const {
    return sum_sq > 0 ? std::sqrt(sum_sq_error / sum_sq) : 0;
  }
};

struct QuantizeReport {
  uint32_t file_type = 0;  // llama_ftype written to general.file_type
  std::vector<std::pair<std::string, engine::GgmlType>>
      tensor_types;                         // file order
  std::map<std::string, TypeError> errors;  // by output type name
  uint64_t bytes_out = 0;
};

// "f32, f16, bf16, q4_0, ..., q4_k_m, ..."
std::string QuantizePresetNames();

// Writes `in` quantized per `options` to out_path. InvalidArgument for an
// unknown preset or (without allow_requantize) a quantized input tensor that
// would change type; Internal on I/O failure.
absl::StatusOr<QuantizeReport> QuantizeModel(const engine::GgufFile& in,
                                             const std::string& out_path,
                                             const QuantizeOptions& options);

}  // namespace lumen::tools
