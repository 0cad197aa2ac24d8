// `lumen model synth-lora`: a random LoRA adapter for a base model, in
// llama.cpp's GGUF adapter format.

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model_config.h"
#include "tools/synth/random_tensors.h"
#include "tools/synth/synth_model.h"

namespace lumen::tools {

namespace {

struct TargetShape {
  const char* tensor;
  int64_t in, out;
};

}  // namespace

absl::Status SynthesizeLora(const SynthLoraOptions& o,
                            const std::string& out_path) {
  if (o.rank < 1 || o.rank > 256) {
    return absl::InvalidArgumentError("--rank must be in [1, 256]");
  }
  auto base = engine::GgufFile::Open(o.base);
  if (!base.ok()) return base.status();
  auto config = engine::ModelConfig::FromGguf(**base);
  if (!config.ok()) return config.status();
  const engine::ModelConfig& c = *config;
  std::set<std::string> targets;
  for (absl::string_view t : absl::StrSplit(o.targets, ',')) {
    if (t != "q" && t != "k" && t != "v" && t != "o" && t != "gate" &&
        t != "up" && t != "down") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--targets: '", t, "' is not one of q, k, v, o, gate, up, down"));
    }
    if (c.moe() && (t == "gate" || t == "up" || t == "down")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--targets: ", t, " is an expert matrix in this MoE model"));
    }
    targets.insert(std::string(t));
  }
  const std::pair<std::string, TargetShape> all[] = {
      {"q", {"attn_q", c.n_embd, c.q_dim()}},
      {"k", {"attn_k", c.n_embd, c.kv_dim()}},
      {"v", {"attn_v", c.n_embd, c.kv_dim()}},
      {"o", {"attn_output", c.q_dim(), c.n_embd}},
      {"gate", {"ffn_gate", c.n_embd, c.n_ff}},
      {"up", {"ffn_up", c.n_embd, c.n_ff}},
      {"down", {"ffn_down", c.n_ff, c.n_embd}},
  };

  engine::GgufWriter w;
  w.SetString("general.architecture", c.arch);
  w.SetString("general.type", "adapter");
  w.SetString("general.name", absl::StrCat("lumen-synth-lora-r", o.rank));
  w.SetString("adapter.type", "lora");
  w.SetFloat32("adapter.lora.alpha", static_cast<float>(o.alpha));
  RandomTensors random(engine::GgmlType::kF32, &w, o.seed);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    for (const auto& [key, shape] : all) {
      if (!targets.contains(key)) continue;
      const std::string name =
          absl::StrCat("blk.", l, ".", shape.tensor, ".weight");
      if (absl::Status s = random.F32Matrix(name + ".lora_a", shape.in, o.rank,
                                            1.0f / std::sqrt(float(shape.in)));
          !s.ok()) {
        return s;
      }
      if (absl::Status s =
              random.F32Matrix(name + ".lora_b", o.rank, shape.out, 0.02f);
          !s.ok()) {
        return s;
      }
    }
  }
  return w.Write(out_path);
}

}  // namespace lumen::tools
