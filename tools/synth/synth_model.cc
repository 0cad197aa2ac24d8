// `lumen model synth`: a random-weight GGUF of a given shape (normal, std
// 0.02; norms 1) with the vocabulary of another GGUF. The files load in
// llama.cpp too, so Lumen and llama.cpp can be benchmarked on the same bytes.

#include "tools/synth/synth_model.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "tools/synth/random_tensors.h"

namespace lumen::tools {

namespace {

using engine::GgmlType;

// A BERT-style embedding model (llama.cpp's GGUF tensor names).
// Copies the tokenizer.* metadata of `vocab`, then the chat template of
// `chat_template` (file contents; empty: none) over the copied one.
void CopyTokenizer(const engine::GgufFile& vocab,
                   const std::string& chat_template, engine::GgufWriter* w) {
  for (const engine::GgufKeyValue& kv : vocab.metadata()) {
    if (absl::StartsWith(kv.key, "tokenizer."))
      w->CopyValue(std::string(kv.key), kv.value);
  }
  if (!chat_template.empty())
    w->SetString("tokenizer.chat_template", chat_template);
}

absl::Status SynthesizeBert(const SynthOptions& o, GgmlType matrix_type,
                            int file_type, const engine::GgufFile& vocab,
                            const std::string& chat_template, int64_t n_vocab,
                            const std::string& out_path) {
  if (o.pooling != "mean" && o.pooling != "cls") {
    return absl::InvalidArgumentError("--pooling must be mean or cls");
  }
  engine::GgufWriter w;
  w.SetString("general.architecture", "bert");
  w.SetString("general.name",
              absl::StrCat("lumen-synth-bert-", o.dim, "x", o.layers));
  w.SetUint32("general.file_type", file_type);
  w.SetUint32("bert.context_length", o.ctx);
  w.SetUint32("bert.embedding_length", o.dim);
  w.SetUint32("bert.block_count", o.layers);
  w.SetUint32("bert.feed_forward_length", o.ffn);
  w.SetUint32("bert.attention.head_count", o.heads);
  w.SetFloat32("bert.attention.layer_norm_epsilon", 1e-12f);
  w.SetBool("bert.attention.causal", false);
  w.SetUint32("bert.pooling_type", o.pooling == "mean" ? 1 : 2);
  CopyTokenizer(vocab, chat_template, &w);
  RandomTensors s(matrix_type, &w, o.seed);
  absl::Status st = s.Matrix("token_embd.weight", o.dim, n_vocab);
  if (st.ok()) st = s.Matrix("position_embd.weight", o.dim, o.ctx);
  if (st.ok()) st = s.Matrix("token_types.weight", o.dim, 2);
  if (st.ok()) st = s.Vector("token_embd_norm.weight", o.dim, 1.0f);
  if (st.ok())
    st = s.Vector("token_embd_norm.bias", o.dim, 0.0f, /*random=*/true);
  for (int64_t l = 0; l < o.layers && st.ok(); ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      if (st.ok()) st = s.Matrix(p + n + ".weight", o.dim, o.dim);
      if (st.ok()) st = s.Vector(p + n + ".bias", o.dim, 0.0f, true);
    }
    if (st.ok()) st = s.Vector(p + "attn_output_norm.weight", o.dim, 1.0f);
    if (st.ok()) st = s.Vector(p + "attn_output_norm.bias", o.dim, 0.0f, true);
    if (st.ok()) st = s.Matrix(p + "ffn_up.weight", o.dim, o.ffn);
    if (st.ok()) st = s.Vector(p + "ffn_up.bias", o.ffn, 0.0f, true);
    if (st.ok()) st = s.Matrix(p + "ffn_down.weight", o.ffn, o.dim);
    if (st.ok()) st = s.Vector(p + "ffn_down.bias", o.dim, 0.0f, true);
    if (st.ok()) st = s.Vector(p + "layer_output_norm.weight", o.dim, 1.0f);
    if (st.ok()) st = s.Vector(p + "layer_output_norm.bias", o.dim, 0.0f, true);
  }
  if (!st.ok()) return st;
  return w.Write(out_path);
}

// What sets each decoder architecture's file apart.
struct ArchTraits {
  std::string gguf_arch;  // general.architecture
  bool moe = false;
  bool shared_expert = false;  // qwen2moe
  bool expert_width_key = false;
  bool biases = false;      // q/k/v biases (qwen2)
  bool qk_norm = false;     // attn_q_norm / attn_k_norm
  bool post_norms = false;  // post_attention_norm / post_ffw_norm
  bool fused = false;       // attn_qkv and a 2 x ffn ffn_up (phi3)
  double rope_base = 10000.0;
  double norm_eps = 1e-5;
};

absl::StatusOr<ArchTraits> TraitsOf(const std::string& arch) {
  ArchTraits t;
  t.gguf_arch = arch;
  if (arch == "llama") {
  } else if (arch == "mixtral") {
    t.gguf_arch = "llama";  // Mixtral GGUFs are llama models with experts
    t.moe = true;
  } else if (arch == "qwen2") {
    t.biases = true;
    t.rope_base = 1e6;
  } else if (arch == "qwen2moe") {
    t.biases = t.moe = t.shared_expert = t.expert_width_key = true;
    t.rope_base = 1e6;
  } else if (arch == "qwen3" || arch == "qwen3moe") {
    t.qk_norm = true;
    t.moe = t.expert_width_key = arch == "qwen3moe";
    t.rope_base = 1e6;
    t.norm_eps = 1e-6;
  } else if (arch == "gemma3") {
    t.qk_norm = t.post_norms = true;
    t.rope_base = 1e6;
    t.norm_eps = 1e-6;
  } else if (arch == "phi3") {
    t.fused = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--arch ", arch,
                     " is not supported (llama, qwen2, mixtral, qwen2moe, "
                     "qwen3, qwen3moe, gemma3, phi3, bert)"));
  }
  return t;
}

// Llama 3.1's frequency factors, as llama.cpp's converter computes them
// (LlamaModel.generate_extra_tensors): pairs turning faster than the
// original context's quarter keep their frequency, slower than all of it
// are divided by 8, those between are blended.
std::vector<float> Llama3RopeFactors(int64_t head_dim, double base) {
  constexpr double kFactor = 8, kLow = 1, kHigh = 4, kOriginal = 8192;
  const double low_wavelen = kOriginal / kLow, high_wavelen = kOriginal / kHigh;
  std::vector<float> factors;
  for (int64_t i = 0; i < head_dim; i += 2) {
    // float32, like the converter's torch arithmetic.
    const double freq = 1.0f / std::pow(static_cast<float>(base),
                                        static_cast<float>(i) / head_dim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      factors.push_back(kFactor);
    } else {
      const double smooth = (kOriginal / wavelen - kLow) / (kHigh - kLow);
      factors.push_back(
          static_cast<float>(1.0 / ((1 - smooth) / kFactor + smooth)));
    }
  }
  return factors;
}

}  // namespace

absl::Status Synthesize(const SynthOptions& o, const std::string& out_path) {
  if (o.arch == "bert") {
    // Checked below with the shared shape rules, then written apart.
  } else if (absl::StatusOr<ArchTraits> t = TraitsOf(o.arch); !t.ok()) {
    return t.status();
  }
  const bool moe =
      o.arch == "mixtral" || o.arch == "qwen2moe" || o.arch == "qwen3moe";
  if (moe &&
      (o.experts < 1 || o.experts_used < 1 || o.experts_used > o.experts)) {
    return absl::InvalidArgumentError(
        "--experts-used must be in [1, --experts]");
  }
  const int64_t shared_ffn = o.shared_ffn > 0 ? o.shared_ffn : 4 * o.ffn;
  GgmlType matrix_type;
  int file_type;  // general.file_type as llama.cpp numbers it
  if (o.type == "f32") {
    matrix_type = GgmlType::kF32, file_type = 0;
  } else if (o.type == "f16") {
    matrix_type = GgmlType::kF16, file_type = 1;
  } else if (o.type == "q8_0") {
    matrix_type = GgmlType::kQ8_0, file_type = 7;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--type ", o.type, " is not supported (f32, f16, q8_0)"));
  }
  if (o.dim <= 0 || o.layers <= 0 || o.heads <= 0 || o.kv_heads <= 0 ||
      o.ffn <= 0 || o.dim % o.heads != 0 || o.heads % o.kv_heads != 0) {
    return absl::InvalidArgumentError(
        "--dim must divide by --heads, and --heads by --kv-heads; all > 0");
  }
  const int64_t head_dim = o.head_dim > 0 ? o.head_dim : o.dim / o.heads;
  if (head_dim % 2 != 0) {
    return absl::InvalidArgumentError("--head-dim must be even");
  }
  const int64_t q_dim = o.heads * head_dim, kv_dim = o.kv_heads * head_dim;
  if (matrix_type == GgmlType::kQ8_0 &&
      (o.dim % 32 != 0 || o.ffn % 32 != 0 || shared_ffn % 32 != 0 ||
       q_dim % 32 != 0)) {
    return absl::InvalidArgumentError(
        "q8_0 needs --dim, --ffn and the q width multiples of 32");
  }
  if (!o.rope_scaling.empty() && o.rope_scaling != "linear" &&
      o.rope_scaling != "yarn") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--rope-scaling ", o.rope_scaling, " is not one of linear, yarn"));
  }
  if (o.llama3_rope && o.arch != "llama") {
    return absl::InvalidArgumentError("--llama3-rope is for --arch llama");
  }
  const int64_t original_ctx =
      o.rope_original_ctx > 0 ? o.rope_original_ctx : o.ctx / 2;
  if (o.longrope && (o.arch != "phi3" || original_ctx >= o.ctx)) {
    return absl::InvalidArgumentError(
        "--longrope is for --arch phi3 with --rope-original-ctx below --ctx");
  }
  if (o.vocab_from.empty()) {
    return absl::InvalidArgumentError("--vocab-from FILE.gguf is required");
  }
  auto vocab_file = engine::GgufFile::Open(o.vocab_from);
  if (!vocab_file.ok()) return vocab_file.status();
  const engine::GgufValue* tokens =
      (*vocab_file)->Find("tokenizer.ggml.tokens");
  if (tokens == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(o.vocab_from, " has no tokenizer.ggml.tokens"));
  }
  const int64_t n_vocab = static_cast<int64_t>(tokens->elems.size());
  std::string chat_template;
  if (!o.chat_template_file.empty()) {
    std::ifstream in(o.chat_template_file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in || text.str().empty()) {
      return absl::NotFoundError(
          absl::StrCat("--chat-template-file: cannot read '",
                       o.chat_template_file, "' (or it is empty)"));
    }
    chat_template = text.str();
  }

  if (o.arch == "bert")
    return SynthesizeBert(o, matrix_type, file_type, **vocab_file,
                          chat_template, n_vocab, out_path);
  const ArchTraits t = *TraitsOf(o.arch);
  const std::string& a = t.gguf_arch;
  engine::GgufWriter w;
  w.SetString("general.architecture", a);
  // llama.cpp's vocabulary loader treats a general.name containing "phi3"
  // specially (it looks for Phi-3's own tokens): spell it apart.
  w.SetString("general.name",
              absl::StrCat("lumen-synth-", o.arch == "phi3" ? "phi_3" : o.arch,
                           "-", o.dim, "x", o.layers));
  if (moe) {
    w.SetUint32(a + ".expert_count", o.experts);
    w.SetUint32(a + ".expert_used_count", o.experts_used);
  }
  if (t.expert_width_key) {
    w.SetUint32(a + ".expert_feed_forward_length", o.ffn);
  }
  if (t.shared_expert) {
    w.SetUint32(a + ".expert_shared_feed_forward_length", shared_ffn);
  }
  w.SetUint32("general.file_type", file_type);
  w.SetUint32(a + ".context_length", o.ctx);
  w.SetUint32(a + ".embedding_length", o.dim);
  w.SetUint32(a + ".block_count", o.layers);
  w.SetUint32(a + ".feed_forward_length", o.ffn);
  w.SetUint32(a + ".attention.head_count", o.heads);
  w.SetUint32(a + ".attention.head_count_kv", o.kv_heads);
  if (head_dim != o.dim / o.heads || t.qk_norm) {
    w.SetUint32(a + ".attention.key_length", head_dim);
    w.SetUint32(a + ".attention.value_length", head_dim);
  }
  w.SetUint32(a + ".rope.dimension_count", head_dim);
  w.SetFloat32(a + ".rope.freq_base",
               o.llama3_rope ? 500000.0f : static_cast<float>(t.rope_base));
  if (!o.rope_scaling.empty()) {
    w.SetString(a + ".rope.scaling.type", o.rope_scaling);
    w.SetFloat32(a + ".rope.scaling.factor", static_cast<float>(o.rope_factor));
    w.SetUint32(a + ".rope.scaling.original_context_length", original_ctx);
  }
  if (o.arch == "phi3") {
    w.SetUint32(a + ".rope.scaling.original_context_length",
                o.longrope ? original_ctx : o.ctx);
  }
  if (o.longrope) {
    // Phi3MiniModel in llama.cpp's converter.
    const double scale = static_cast<double>(o.ctx) / original_ctx;
    w.SetFloat32(a + ".rope.scaling.attn_factor",
                 static_cast<float>(std::sqrt(
                     1 + std::log(scale) / std::log(double(original_ctx)))));
  }
  if (o.arch == "gemma3") {
    w.SetUint32(a + ".attention.sliding_window", o.sliding_window);
    w.SetFloat32(a + ".rope.freq_base_swa", 10000.0f);
  }
  w.SetFloat32(a + ".attention.layer_norm_rms_epsilon",
               static_cast<float>(t.norm_eps));
  w.SetUint32(a + ".vocab_size", n_vocab);
  CopyTokenizer(**vocab_file, chat_template, &w);

  RandomTensors s(matrix_type, &w, o.seed);
  s.set_matrix_std(static_cast<float>(o.weight_std));
  const float jitter = static_cast<float>(o.norm_jitter);
  absl::Status st = s.Matrix("token_embd.weight", o.dim, n_vocab);
  if (st.ok()) st = s.Norm("output_norm.weight", o.dim, jitter);
  if (st.ok() && o.untied) st = s.Matrix("output.weight", o.dim, n_vocab);
  if (st.ok() && o.llama3_rope) {
    st = s.Values("rope_freqs.weight", Llama3RopeFactors(head_dim, 500000.0));
  }
  if (st.ok() && o.longrope) {
    // Growing with the pair index like Phi-3's factors: long up to the
    // context stretch, short up to 1.5.
    const int64_t half = head_dim / 2;
    const double stretch = static_cast<double>(o.ctx) / original_ctx;
    std::vector<float> long_f(half), short_f(half);
    for (int64_t i = 0; i < half; ++i) {
      const double x = half > 1 ? double(i) / (half - 1) : 0.0;
      long_f[i] = static_cast<float>(1 + (stretch - 1) * x * x);
      short_f[i] = static_cast<float>(1 + 0.5 * x * x * x);
    }
    st = s.Values("rope_factors_long.weight", long_f);
    if (st.ok()) st = s.Values("rope_factors_short.weight", short_f);
  }
  for (int64_t l = 0; l < o.layers && st.ok(); ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    if (t.fused) {
      st = s.Matrix(p + "attn_qkv.weight", o.dim, q_dim + 2 * kv_dim);
    } else {
      st = s.Matrix(p + "attn_q.weight", o.dim, q_dim);
      if (st.ok()) st = s.Matrix(p + "attn_k.weight", o.dim, kv_dim);
      if (st.ok()) st = s.Matrix(p + "attn_v.weight", o.dim, kv_dim);
    }
    if (st.ok() && t.biases) {
      st = s.Vector(p + "attn_q.bias", q_dim, 0.0f, /*random=*/true);
      if (st.ok()) st = s.Vector(p + "attn_k.bias", kv_dim, 0.0f, true);
      if (st.ok()) st = s.Vector(p + "attn_v.bias", kv_dim, 0.0f, true);
    }
    if (st.ok() && t.qk_norm) {
      st = s.Norm(p + "attn_q_norm.weight", head_dim, jitter);
      if (st.ok()) st = s.Norm(p + "attn_k_norm.weight", head_dim, jitter);
    }
    if (st.ok()) st = s.Matrix(p + "attn_output.weight", q_dim, o.dim);
    if (st.ok()) st = s.Norm(p + "attn_norm.weight", o.dim, jitter);
    if (st.ok() && t.post_norms)
      st = s.Norm(p + "post_attention_norm.weight", o.dim, jitter);
    if (moe) {
      // Routers get a larger spread than the other matrices so that tokens
      // prefer some experts clearly (uneven loads, as in trained models).
      if (st.ok())
        st = s.F32Matrix(p + "ffn_gate_inp.weight", o.dim, o.experts, 0.2f);
      if (st.ok())
        st = s.Experts(p + "ffn_gate_exps.weight", o.dim, o.ffn, o.experts);
      if (st.ok())
        st = s.Experts(p + "ffn_down_exps.weight", o.ffn, o.dim, o.experts);
      if (st.ok())
        st = s.Experts(p + "ffn_up_exps.weight", o.dim, o.ffn, o.experts);
      if (st.ok() && t.shared_expert) {
        st = s.Vector(p + "ffn_gate_inp_shexp.weight", o.dim, 0.0f, true);
        if (st.ok())
          st = s.Matrix(p + "ffn_gate_shexp.weight", o.dim, shared_ffn);
        if (st.ok())
          st = s.Matrix(p + "ffn_down_shexp.weight", shared_ffn, o.dim);
        if (st.ok())
          st = s.Matrix(p + "ffn_up_shexp.weight", o.dim, shared_ffn);
      }
    } else if (t.fused) {
      // Phi-3: gate rows then up rows in one ffn_up.
      if (st.ok()) st = s.Matrix(p + "ffn_up.weight", o.dim, 2 * o.ffn);
      if (st.ok()) st = s.Matrix(p + "ffn_down.weight", o.ffn, o.dim);
    } else {
      if (st.ok()) st = s.Matrix(p + "ffn_gate.weight", o.dim, o.ffn);
      if (st.ok()) st = s.Matrix(p + "ffn_down.weight", o.ffn, o.dim);
      if (st.ok()) st = s.Matrix(p + "ffn_up.weight", o.dim, o.ffn);
    }
    if (st.ok()) st = s.Norm(p + "ffn_norm.weight", o.dim, jitter);
    if (st.ok() && t.post_norms)
      st = s.Norm(p + "post_ffw_norm.weight", o.dim, jitter);
  }
  if (!st.ok()) return st;
  return w.Write(out_path);
}

}  // namespace lumen::tools
