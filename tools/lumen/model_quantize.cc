// `lumen model quantize IN.gguf OUT.gguf --type q4_k_m [--pure]
// [--allow-requantize]`: llama-quantize's presets and per-tensor mix.

#include <cstdio>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/flags.h"
#include "engine/gguf/gguf_file.h"
#include "tools/lumen/commands.h"
#include "tools/quantize/quantize_model.h"

namespace lumen::tools {

int ModelQuantize(const Args& args) {
  QuantizeOptions o;
  FlagSet flags(
      "lumen model quantize IN.gguf OUT.gguf --type TYPE [--pure] "
      "[--allow-requantize]");
  flags.String("type", &o.preset,
               absl::StrCat("one of ", QuantizePresetNames()));
  flags.Bool("pure", &o.pure,
             "every quantized tensor in the default type (no per-tensor mix)");
  flags.Bool("allow-requantize", &o.allow_requantize,
             "accept already-quantized input tensors");
  if (auto rc = ParseOrHelp(&flags, args)) return *rc;
  if (flags.positional().size() != 2)
    return Fail("expected IN.gguf OUT.gguf\n" + flags.Help(), 2);
  if (o.preset.empty()) return Fail("--type is required\n" + flags.Help(), 2);
  auto in = engine::GgufFile::Open(flags.positional()[0]);
  if (!in.ok()) return Fail(std::string(in.status().message()));
  auto report = QuantizeModel(**in, flags.positional()[1], o);
  if (!report.ok()) return Fail(std::string(report.status().message()));
  std::map<std::string, int> counts;
  for (const auto& [name, type] : report->tensor_types)
    counts[engine::GgmlTypeName(type)]++;
  std::string mix;
  for (const auto& [type, n] : counts)
    absl::StrAppend(&mix, mix.empty() ? "" : ", ", type, " ", n);
  std::printf("%s: %zu tensors (%s), %.2f MiB -> %.2f MiB, file type %u\n",
              flags.positional()[1].c_str(), report->tensor_types.size(),
              mix.c_str(), (*in)->file_size() / 1048576.0,
              report->bytes_out / 1048576.0, report->file_type);
  for (const auto& [type, e] : report->errors) {
    std::printf(
        "  %-7s %3d tensors: RMS error %.3g (%.2f%% of the weights' RMS)\n",
        type.c_str(), e.tensors, e.rms(), 100 * e.relative_rms());
  }
  return 0;
}

}  // namespace lumen::tools
