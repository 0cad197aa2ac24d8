// `lumen model synth`: see tools/synth/synth_model.h.

#include <cstdio>

#include "base/flags.h"
#include "tools/lumen/commands.h"
#include "tools/synth/synth_model.h"

namespace lumen::tools {

int ModelSynth(const Args& args) {
  SynthOptions o;
  FlagSet flags(
      "lumen model synth --arch "
      "llama|qwen2|mixtral|qwen2moe|qwen3|qwen3moe|gemma3|phi3|bert --dim D "
      "--layers L --heads H --kv-heads K [--head-dim HD] --ffn F [--experts E "
      "--experts-used K] --vocab-from VOCAB.gguf --ctx C --type "
      "f32|f16|q8_0 --seed N [--untied] [--chat-template-file T.jinja] "
      "OUT.gguf");
  flags.String("arch", &o.arch,
               "architecture: llama, qwen2 (attention biases), mixtral (llama "
               "with MoE), qwen2moe (MoE with a shared expert), qwen3 (q/k "
               "norms), qwen3moe, gemma3 (sliding-window layers, pre/post "
               "norms, GELU), phi3 (fused qkv and gate/up) or bert "
               "(embeddings)");
  flags.Int("head-dim", &o.head_dim,
            "attention.key_length: q width = heads x head dim (0 = dim / "
            "heads)");
  flags.Int("sliding-window", &o.sliding_window,
            "gemma3: tokens a sliding-window layer attends to");
  flags.Bool("llama3-rope", &o.llama3_rope,
             "llama: Llama-3.1 frequency factors (rope_freqs.weight) and rope "
             "base 500000");
  flags.Bool("longrope", &o.longrope,
             "phi3: LongRoPE long/short factors and attn_factor for --ctx over "
             "--rope-original-ctx");
  flags.String("rope-scaling", &o.rope_scaling,
               "rope.scaling.type: linear or yarn (empty: none written)");
  flags.Double("rope-factor", &o.rope_factor, "rope.scaling.factor");
  flags.Int("rope-original-ctx", &o.rope_original_ctx,
            "rope.scaling.original_context_length (0 = --ctx / 2)");
  flags.Double("norm-jitter", &o.norm_jitter,
               "norm weights 1 + jitter x N(0, 1) instead of 1");
  flags.Double("weight-std", &o.weight_std,
               "standard deviation of the random matrices");
  flags.Int("experts", &o.experts, "MoE: experts per layer");
  flags.Int("experts-used", &o.experts_used, "MoE: experts chosen per token");
  flags.Int("shared-ffn", &o.shared_ffn,
            "qwen2moe: shared expert width (default 4 x --ffn)");
  flags.Int("dim", &o.dim, "model width");
  flags.Int("layers", &o.layers, "transformer blocks");
  flags.Int("heads", &o.heads, "attention heads");
  flags.Int("kv-heads", &o.kv_heads,
            "key/value heads (grouped-query when < heads)");
  flags.Int("ffn", &o.ffn, "feed-forward width (MoE: of each expert)");
  flags.Int("ctx", &o.ctx, "context length recorded in the metadata");
  flags.Int("seed", &o.seed, "random seed");
  flags.String("vocab-from", &o.vocab_from, "GGUF whose tokenizer is copied");
  flags.String("chat-template-file", &o.chat_template_file,
               "a Jinja chat template written as tokenizer.chat_template "
               "(instead of --vocab-from's)");
  flags.String("type", &o.type,
               "matrix type: f32, f16 or q8_0 (norms stay f32)");
  flags.Bool("untied", &o.untied, "write a separate output.weight");
  flags.String("pooling", &o.pooling, "bert: mean or cls pooling");
  if (auto rc = ParseOrHelp(&flags, args)) return *rc;
  if (flags.positional().size() != 1)
    return Fail("expected one OUT.gguf\n" + flags.Help(), 2);
  if (absl::Status s = Synthesize(o, flags.positional()[0]); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::fprintf(stderr, "wrote %s\n", flags.positional()[0].c_str());
  return 0;
}

}  // namespace lumen::tools

namespace lumen::tools {

int ModelSynthLora(const Args& args) {
  SynthLoraOptions o;
  FlagSet flags(
      "lumen model synth-lora --base BASE.gguf --rank R --alpha A --targets "
      "q,k,v,o,gate,up,down --seed N OUT.gguf");
  flags.String("base", &o.base, "the base model the adapter fits");
  flags.Int("rank", &o.rank, "LoRA rank r");
  flags.Double("alpha", &o.alpha,
               "LoRA alpha (the delta is scaled by alpha/r)");
  flags.String("targets", &o.targets,
               "comma-separated matrices: q, k, v, o, gate, up, down");
  flags.Int("seed", &o.seed, "random seed");
  if (auto rc = ParseOrHelp(&flags, args)) return *rc;
  if (flags.positional().size() != 1 || o.base.empty())
    return Fail("expected --base BASE.gguf and one OUT.gguf\n" + flags.Help(),
                2);
  if (absl::Status s = SynthesizeLora(o, flags.positional()[0]); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::fprintf(stderr, "wrote %s\n", flags.positional()[0].c_str());
  return 0;
}

}  // namespace lumen::tools
