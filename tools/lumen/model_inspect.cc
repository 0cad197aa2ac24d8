// `lumen model inspect FILE [--json]`.

#include <algorithm>
#include <cstdio>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/flags.h"
#include "base/json_writer.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/model_config.h"
#include "engine/model/model_family.h"
#include "engine/tokenizer/vocab.h"
#include "tools/lumen/commands.h"
#include "tools/lumen/model_chat.h"

namespace lumen::tools {

namespace {

using engine::GgufFile;
using engine::GgufTensorInfo;

std::string Thousands(uint64_t v) {
  std::string s = absl::StrCat(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(i, ",");
  return s;
}

std::string Bytes(uint64_t b) {
  if (b >= (1ull << 30))
    return absl::StrFormat("%.2f GiB", b / double(1ull << 30));
  if (b >= (1ull << 20))
    return absl::StrFormat("%.2f MiB", b / double(1ull << 20));
  if (b >= (1ull << 10))
    return absl::StrFormat("%.1f KiB", b / double(1ull << 10));
  return absl::StrCat(b, " B");
}

struct Sizes {
  uint64_t parameters = 0;
  uint64_t expert_parameters = 0;  // in the stacked *_exps tensors
  uint64_t fp32 = 0, fp16 = 0, int8 = 0;
  std::map<std::string, int> types;
};

// fp32/fp16: parameters x 4/2. int8: matrices at 1 byte per weight plus one
// fp32 scale per output row; vectors (norms, biases) stay fp32, as the engine
// holds them.
Sizes ComputeSizes(const GgufFile& f) {
  Sizes s;
  for (const GgufTensorInfo& t : f.tensors()) {
    s.parameters += t.num_elements;
    if (absl::StrContains(t.name, "_exps."))
      s.expert_parameters += t.num_elements;
    s.types[engine::GgmlTypeName(t.type)]++;
    if (t.dims.size() >= 2) {
      s.int8 += t.num_elements + 4 * (t.num_elements / t.dims[0]);
    } else {
      s.int8 += 4 * t.num_elements;
    }
  }
  s.fp32 = 4 * s.parameters;
  s.fp16 = 2 * s.parameters;
  return s;
}

// Parameters one token uses: everything except the experts it is not
// routed to.
uint64_t ActiveParameters(const Sizes& s, const engine::ModelConfig& c) {
  if (c.n_experts <= 0) return s.parameters;
  return s.parameters - s.expert_parameters +
         s.expert_parameters / c.n_experts * c.n_experts_used;
}

// A LoRA adapter: rank, alpha, targets, parameters and, given the base
// model, their share of it.
int InspectAdapter(const GgufFile& f, const std::string& base_path, bool json) {
  uint64_t parameters = 0;
  int64_t min_rank = 0, max_rank = 0, matrices = 0;
  std::map<std::string, int> targets;
  for (const GgufTensorInfo& t : f.tensors()) {
    parameters += t.num_elements;
    if (!absl::EndsWith(t.name, ".lora_a") || t.dims.size() != 2) continue;
    ++matrices;
    const int64_t r = t.dims[1];
    min_rank = min_rank == 0 ? r : std::min(min_rank, r);
    max_rank = std::max(max_rank, r);
    const std::vector<absl::string_view> parts = absl::StrSplit(t.name, '.');
    if (parts.size() >= 3) targets[std::string(parts[2])]++;
  }
  auto alpha = f.GetFloatOr("adapter.lora.alpha", 0.0);
  auto arch = f.GetString("general.architecture");
  uint64_t base_parameters = 0;
  if (!base_path.empty()) {
    auto base = GgufFile::Open(base_path);
    if (!base.ok()) return Fail(std::string(base.status().message()));
    base_parameters = ComputeSizes(**base).parameters;
  }
  std::string target_list;
  for (const auto& [name, n] : targets)
    absl::StrAppend(&target_list, target_list.empty() ? "" : ",", name);
  if (json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("file").String(f.path());
    w.Key("type").String("lora_adapter");
    w.Key("architecture").String(arch.ok() ? std::string(*arch) : "");
    w.Key("alpha").Double(alpha.value_or(0));
    w.Key("rank_min").Int(min_rank);
    w.Key("rank_max").Int(max_rank);
    w.Key("adapted_matrices").Int(matrices);
    w.Key("targets").String(target_list);
    w.Key("parameters").Int(parameters);
    if (base_parameters > 0) {
      w.Key("base_parameters").Int(base_parameters);
      w.Key("ratio_to_base").Double(double(parameters) / base_parameters);
    }
    w.EndObject();
    std::printf("%s\n", w.str().c_str());
    return 0;
  }
  std::printf("file            %s (%s bytes, GGUF v%u)\n", f.path().c_str(),
              Thousands(f.file_size()).c_str(), f.version());
  std::printf("adapter         LoRA for %s, alpha %g, rank %lld%s\n",
              arch.ok() ? std::string(*arch).c_str() : "?", alpha.value_or(0),
              (long long)max_rank,
              min_rank != max_rank
                  ? absl::StrCat(" (min ", min_rank, ")").c_str()
                  : "");
  std::printf("targets         %s (%lld matrices)\n", target_list.c_str(),
              (long long)matrices);
  std::printf("parameters      %s", Thousands(parameters).c_str());
  if (base_parameters > 0) {
    std::printf(" = %.3f%% of the base's %s\n",
                100.0 * parameters / base_parameters,
                Thousands(base_parameters).c_str());
  } else {
    std::printf(" (give --base BASE.gguf for the ratio to the base)\n");
  }
  return 0;
}

std::string RopeFactorsName(engine::RopeFactorTensors t) {
  switch (t) {
    case engine::RopeFactorTensors::kNone:
      return "none";
    case engine::RopeFactorTensors::kFreqs:
      return "rope_freqs";
    case engine::RopeFactorTensors::kLongShort:
      return "longrope";
  }
  return "?";
}

int64_t SlidingLayers(const engine::ModelConfig& c) {
  int64_t n = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) n += c.sliding(l);
  return n;
}

// One line on how positions are encoded.
std::string RopeLine(const engine::ModelConfig& c) {
  const engine::RopeConfig& r = c.rope;
  std::string s;
  if (c.family != nullptr) {
    s = c.family->rope_style == engine::kernels::RopeStyle::kAdjacent
            ? "adjacent pairs, "
            : "neox halves, ";
  }
  absl::StrAppend(&s, "dim ", r.dim, ", base ", absl::StrFormat("%g", r.base));
  if (c.sliding_window > 0) {
    absl::StrAppend(&s, " (sliding-window layers ",
                    absl::StrFormat("%g", r.base_sliding), ")");
  }
  if (r.factor != 1.0) {
    absl::StrAppend(&s, ", ", engine::RopeScalingName(r.scaling), " scaling x",
                    absl::StrFormat("%g", r.factor), " of ",
                    r.original_context);
  }
  switch (r.factor_tensors) {
    case engine::RopeFactorTensors::kNone:
      break;
    case engine::RopeFactorTensors::kFreqs:
      absl::StrAppend(&s, ", frequency factors (rope_freqs)");
      break;
    case engine::RopeFactorTensors::kLongShort:
      absl::StrAppend(&s,
                      ", LongRoPE factors: long when the context (rounded up "
                      "to 256) exceeds ",
                      r.original_context, ", else short");
      break;
  }
  if (r.attn_factor != 1.0) {
    absl::StrAppend(&s, ", attn factor ",
                    absl::StrFormat("%.7g", r.attn_factor));
  }
  return s;
}

std::string TokenLabel(const engine::Vocab& v, int32_t id) {
  if (id < 0) return "-";
  return absl::StrCat(id, " '", v.tokens[id], "'");
}

}  // namespace

int ModelInspect(const Args& args) {
  bool json = false;
  std::string base;
  FlagSet flags("lumen model inspect FILE [--base BASE.gguf] [--json]");
  flags.Bool("json", &json, "print one JSON object");
  flags.String("base", &base,
               "adapters: the base model, to report the adapter's share");
  if (auto rc = ParseOrHelp(&flags, args)) return *rc;
  if (flags.positional().size() != 1)
    return Fail("expected one FILE\n" + flags.Help(), 2);

  auto file = GgufFile::Open(flags.positional()[0]);
  if (!file.ok()) return Fail(std::string(file.status().message()));
  const GgufFile& f = **file;
  if (const engine::GgufValue* type = f.Find("general.type");
      type != nullptr && type->type == engine::GgufValueType::kString &&
      type->str == "adapter") {
    return InspectAdapter(f, base, json);
  }
  const Sizes sizes = ComputeSizes(f);
  auto config = engine::ModelConfig::FromGguf(f);
  auto vocab = engine::Vocab::FromGguf(f);
  const bool has_weights = !f.tensors().empty();
  if (has_weights && !config.ok())
    return Fail(std::string(config.status().message()));

  if (json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("file").String(f.path());
    w.Key("file_bytes").Int(f.file_size());
    w.Key("gguf_version").Int(f.version());
    if (config.ok()) {
      const engine::ModelConfig& c = *config;
      w.Key("architecture").String(c.arch);
      w.Key("name").String(c.name);
      w.Key("hyperparameters").BeginObject();
      w.Key("embedding_length").Int(c.n_embd);
      w.Key("block_count").Int(c.n_layers);
      w.Key("head_count").Int(c.n_heads);
      w.Key("head_count_kv").Int(c.n_kv_heads);
      w.Key("head_dim").Int(c.head_dim);
      w.Key("feed_forward_length").Int(c.n_ff);
      w.Key("context_length").Int(c.n_ctx_train);
      w.Key("rope_dimension_count").Int(c.rope.dim);
      w.Key("rope_freq_base").Double(c.rope.base);
      w.Key("rms_norm_eps").Double(c.norm_eps);
      w.Key("expert_count").Int(c.n_experts);
      w.Key("expert_used_count").Int(c.n_experts_used);
      w.Key("tied_output").Bool(c.tied_output);
      w.Key("attention_bias").Bool(c.has_qkv_bias);
      w.Key("q_dim").Int(c.q_dim());
      w.Key("attention_scale").Double(c.attention_scale);
      w.Key("embedding_scale").Double(c.embedding_scale);
      w.Key("sliding_window").Int(c.sliding_window);
      w.Key("sliding_window_layers").Int(SlidingLayers(c));
      w.Key("rope_freq_base_sliding").Double(c.rope.base_sliding);
      w.Key("rope_scaling_type")
          .String(std::string(engine::RopeScalingName(c.rope.scaling)));
      w.Key("rope_scaling_factor").Double(c.rope.factor);
      w.Key("rope_original_context_length").Int(c.rope.original_context);
      w.Key("rope_attn_factor").Double(c.rope.attn_factor);
      w.Key("rope_factors").String(RopeFactorsName(c.rope.factor_tensors));
      if (c.moe()) {
        w.Key("expert_feed_forward_length").Int(c.n_ff_expert);
        w.Key("expert_shared_feed_forward_length").Int(c.n_ff_shared);
      }
      w.EndObject();
      w.Key("engine_supported").Bool(c.family != nullptr);
      if (c.family != nullptr) {
        w.Key("layer_steps").BeginArray();
        for (engine::BlockStep step : c.family->block)
          w.String(std::string(engine::BlockStepName(step)));
        w.EndArray();
      }
      w.Key("kv_cache_bytes_per_token").Int(c.KvBytesPerToken());  // f32
      w.Key("kv_cache_bytes_per_token_f16").Int(c.KvBytesPerToken(2));
    }
    w.Key("tensor_count").Int(f.tensors().size());
    w.Key("tensor_types").BeginObject();
    for (const auto& [name, n] : sizes.types) w.Key(name).Int(n);
    w.EndObject();
    w.Key("parameters").Int(sizes.parameters);
    if (config.ok()) {
      w.Key("active_parameters_per_token")
          .Int(ActiveParameters(sizes, *config));
    }
    w.Key("size_bytes").BeginObject();
    w.Key("fp32").Int(sizes.fp32);
    w.Key("fp16").Int(sizes.fp16);
    w.Key("int8").Int(sizes.int8);
    w.Key("file").Int(f.file_size());
    w.EndObject();
    if (vocab.ok()) {
      const engine::Vocab& v = **vocab;
      w.Key("tokenizer").BeginObject();
      w.Key("model").String(v.model);
      w.Key("type").String(engine::VocabTypeName(v.type));
      w.Key("pre").String(v.pre);
      w.Key("vocab_size").Int(v.size());
      w.Key("bos").Int(v.bos);
      w.Key("eos").Int(v.eos);
      w.Key("eot").Int(v.eot);
      w.Key("unk").Int(v.unk);
      w.Key("add_bos").Bool(v.add_bos);
      w.Key("add_eos").Bool(v.add_eos);
      w.Key("special_token_count").Int(v.special_tokens.size());
      w.EndObject();
      w.Key("chat_template").Bool(!v.chat_template.empty());
      const ChatTemplateSummary chat = SummarizeChatTemplate(f, v);
      w.Key("chat_template_used").String(chat.usable ? chat.used : "");
      if (!chat.usable) w.Key("chat_template_error").String(chat.used);
      w.Key("chat_template_named").BeginArray();
      for (const std::string& name : chat.named) w.String(name);
      w.EndArray();
      if (chat.jinja) {
        w.Key("chat_template_capabilities").BeginObject();
        w.Key("system_role").Bool(chat.capabilities.system_role);
        w.Key("tools").Bool(chat.capabilities.tools);
        w.Key("tool_calls").Bool(chat.capabilities.tool_calls);
        w.Key("typed_content").Bool(chat.capabilities.typed_content);
        w.Key("null_content").Bool(chat.capabilities.null_content);
        w.EndObject();
      }
    }
    w.EndObject();
    std::printf("%s\n", w.str().c_str());
    return 0;
  }

  std::printf("file            %s (%s bytes, GGUF v%u)\n", f.path().c_str(),
              Thousands(f.file_size()).c_str(), f.version());
  if (config.ok()) {
    const engine::ModelConfig& c = *config;
    std::printf("architecture    %s%s\n", c.arch.c_str(),
                c.name.empty() ? "" : (" (" + c.name + ")").c_str());
    std::printf(
        "shape           width %lld, %lld layers, %lld heads, %lld kv heads, "
        "head dim %lld, ffn %lld, vocab %lld\n",
        (long long)c.n_embd, (long long)c.n_layers, (long long)c.n_heads,
        (long long)c.n_kv_heads, (long long)c.head_dim, (long long)c.n_ff,
        (long long)c.n_vocab);
    std::printf(
        "attention       %s, q width %lld, scale %g, rms eps %g, context "
        "%lld, %s output%s\n",
        c.n_kv_heads < c.n_heads
            ? absl::StrCat("grouped-query (", c.n_heads / c.n_kv_heads,
                           " query heads per kv head)")
                  .c_str()
            : "multi-head",
        (long long)c.q_dim(), c.attention_scale, c.norm_eps,
        (long long)c.n_ctx_train, c.tied_output ? "tied" : "separate",
        c.has_qkv_bias ? ", qkv bias" : "");
    if (c.sliding_window > 0) {
      std::printf(
          "sliding window  %lld tokens on %lld of %lld layers (every %lldth "
          "layer attends to the whole context)\n",
          (long long)c.sliding_window, (long long)SlidingLayers(c),
          (long long)c.n_layers, (long long)c.sliding_period);
    }
    std::printf("rope            %s\n", RopeLine(c).c_str());
    if (c.family != nullptr) {
      std::printf("layer           %s\n",
                  engine::BlockSummary(*c.family).c_str());
    } else {
      std::printf(
          "layer           - ('%s' is not one of the decoder families: "
          "%s)\n",
          c.arch.c_str(), engine::SupportedArchitectures().c_str());
    }
    if (c.embedding_scale != 1.0) {
      std::printf("embedding       scaled by %g\n", c.embedding_scale);
    }
    if (c.n_experts > 0) {
      std::printf(
          "experts         %lld, %lld used per token, width %lld%s\n",
          (long long)c.n_experts, (long long)c.n_experts_used,
          (long long)c.n_ff_expert,
          c.n_ff_shared > 0
              ? absl::StrCat(", shared expert width ", c.n_ff_shared).c_str()
              : "");
    }
  } else {
    std::printf("architecture    - (%s)\n",
                std::string(config.status().message()).c_str());
  }
  std::string types;
  for (const auto& [name, n] : sizes.types)
    absl::StrAppend(&types, types.empty() ? "" : ", ", name, " ", n);
  std::printf("tensors         %zu (%s)\n", f.tensors().size(), types.c_str());
  std::printf("parameters      %s\n", Thousands(sizes.parameters).c_str());
  if (config.ok() && config->n_experts > 0) {
    std::printf(
        "active          %s per token (%lld of %lld experts; experts hold "
        "%s)\n",
        Thousands(ActiveParameters(sizes, *config)).c_str(),
        (long long)config->n_experts_used, (long long)config->n_experts,
        Thousands(sizes.expert_parameters).c_str());
  }
  std::printf(
      "size            fp32 %s | fp16 %s | int8 %s (incl. fp32 row scales) | "
      "file %s (%.2f bits per parameter)\n",
      Bytes(sizes.fp32).c_str(), Bytes(sizes.fp16).c_str(),
      Bytes(sizes.int8).c_str(), Bytes(f.file_size()).c_str(),
      sizes.parameters ? 8.0 * f.file_size() / sizes.parameters : 0.0);
  if (config.ok()) {
    const engine::ModelConfig& c = *config;
    std::printf(
        "kv cache        %s bytes per token with f16 elements (lumend's "
        "default), %s with f32 (K+V: 2 x %lld layers x %lld)\n",
        Thousands(c.KvBytesPerToken(2)).c_str(),
        Thousands(c.KvBytesPerToken()).c_str(), (long long)c.n_layers,
        (long long)c.kv_dim());
  }
  if (vocab.ok()) {
    const engine::Vocab& v = **vocab;
    std::printf("tokenizer       %s (%s), %d tokens, pre-tokenizer %s\n",
                v.model.c_str(),
                std::string(engine::VocabTypeName(v.type)).c_str(), v.size(),
                v.pre.c_str());
    std::printf(
        "special tokens  bos %s, eos %s, eot %s, unk %s; add bos %s, add eos "
        "%s\n",
        TokenLabel(v, v.bos).c_str(), TokenLabel(v, v.eos).c_str(),
        TokenLabel(v, v.eot).c_str(), TokenLabel(v, v.unk).c_str(),
        v.add_bos ? "yes" : "no", v.add_eos ? "yes" : "no");
    std::printf("chat template   %s\n",
                ChatTemplateLine(SummarizeChatTemplate(f, v)).c_str());
  } else {
    std::printf("tokenizer       - (%s)\n",
                std::string(vocab.status().message()).c_str());
  }
  return 0;
}

}  // namespace lumen::tools
