// `lumen model synth`: a random-weight GGUF of a given shape (normal, std
// 0.02; norms 1) with the vocabulary of another GGUF. The files load in
// llama.cpp too, so Lumen and llama.cpp can be benchmarked on the same bytes.

#include "tools/synth/synth_model.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "tools/synth/random_tensors.h"

namespace lumen::tools {

namespace {

using engine::GgmlType;

// A BERT-style embedding model (llama.cpp's GGUF tensor names).
absl::Status SynthesizeBert(const SynthOptions& o, GgmlType matrix_type,
                            int file_type, const engine::GgufFile& vocab,
                            int64_t n_vocab, const std::string& out_path) {
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
  for (const engine::GgufKeyValue& kv : vocab.metadata()) {
    if (absl::StartsWith(kv.key, "tokenizer."))
      w.CopyValue(std::string(kv.key), kv.value);
  }
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

}  // namespace

absl::Status Synthesize(const SynthOptions& o, const std::string& out_path) {
  if (o.arch != "llama" && o.arch != "qwen2" && o.arch != "mixtral" &&
      o.arch != "qwen2moe" && o.arch != "bert") {
    return absl::InvalidArgumentError(
        absl::StrCat("--arch ", o.arch,
                     " is not supported (llama, qwen2, mixtral, qwen2moe, "
                     "bert)"));
  }
  const bool moe = o.arch == "mixtral" || o.arch == "qwen2moe";
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
  const int64_t head_dim = o.dim / o.heads;
  if (matrix_type == GgmlType::kQ8_0 &&
      (o.dim % 32 != 0 || o.ffn % 32 != 0 || shared_ffn % 32 != 0)) {
    return absl::InvalidArgumentError(
        "q8_0 needs --dim and --ffn multiples of 32");
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

  if (o.arch == "bert")
    return SynthesizeBert(o, matrix_type, file_type, **vocab_file, n_vocab,
                          out_path);
  engine::GgufWriter w;
  // Mixtral GGUFs are llama models with expert tensors.
  const std::string a = o.arch == "mixtral" ? "llama" : o.arch;
  const bool biases = a == "qwen2" || a == "qwen2moe";
  w.SetString("general.architecture", a);
  w.SetString("general.name",
              absl::StrCat("lumen-synth-", o.arch, "-", o.dim, "x", o.layers));
  if (moe) {
    w.SetUint32(a + ".expert_count", o.experts);
    w.SetUint32(a + ".expert_used_count", o.experts_used);
  }
  if (a == "qwen2moe") {
    w.SetUint32(a + ".expert_feed_forward_length", o.ffn);
    w.SetUint32(a + ".expert_shared_feed_forward_length", shared_ffn);
  }
  w.SetUint32("general.file_type", file_type);
  w.SetUint32(a + ".context_length", o.ctx);
  w.SetUint32(a + ".embedding_length", o.dim);
  w.SetUint32(a + ".block_count", o.layers);
  w.SetUint32(a + ".feed_forward_length", o.ffn);
  w.SetUint32(a + ".attention.head_count", o.heads);
  w.SetUint32(a + ".attention.head_count_kv", o.kv_heads);
  w.SetUint32(a + ".rope.dimension_count", head_dim);
  w.SetFloat32(a + ".rope.freq_base", biases ? 1000000.0f : 10000.0f);
  w.SetFloat32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetUint32(a + ".vocab_size", n_vocab);
  for (const engine::GgufKeyValue& kv : (*vocab_file)->metadata()) {
    if (absl::StartsWith(kv.key, "tokenizer."))
      w.CopyValue(std::string(kv.key), kv.value);
  }

  RandomTensors s(matrix_type, &w, o.seed);
  const int64_t kv_dim = o.kv_heads * head_dim;
  absl::Status st = s.Matrix("token_embd.weight", o.dim, n_vocab);
  if (st.ok()) st = s.Vector("output_norm.weight", o.dim, 1.0f);
  if (st.ok() && o.untied) st = s.Matrix("output.weight", o.dim, n_vocab);
  for (int64_t l = 0; l < o.layers && st.ok(); ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    st = s.Matrix(p + "attn_q.weight", o.dim, o.dim);
    if (st.ok()) st = s.Matrix(p + "attn_k.weight", o.dim, kv_dim);
    if (st.ok()) st = s.Matrix(p + "attn_v.weight", o.dim, kv_dim);
    if (st.ok() && biases) {
      st = s.Vector(p + "attn_q.bias", o.dim, 0.0f, /*random=*/true);
      if (st.ok()) st = s.Vector(p + "attn_k.bias", kv_dim, 0.0f, true);
      if (st.ok()) st = s.Vector(p + "attn_v.bias", kv_dim, 0.0f, true);
    }
    if (st.ok()) st = s.Matrix(p + "attn_output.weight", o.dim, o.dim);
    if (st.ok()) st = s.Vector(p + "attn_norm.weight", o.dim, 1.0f);
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
      if (st.ok() && a == "qwen2moe") {
        st = s.Vector(p + "ffn_gate_inp_shexp.weight", o.dim, 0.0f, true);
        if (st.ok())
          st = s.Matrix(p + "ffn_gate_shexp.weight", o.dim, shared_ffn);
        if (st.ok())
          st = s.Matrix(p + "ffn_down_shexp.weight", shared_ffn, o.dim);
        if (st.ok())
          st = s.Matrix(p + "ffn_up_shexp.weight", o.dim, shared_ffn);
      }
    } else {
      if (st.ok()) st = s.Matrix(p + "ffn_gate.weight", o.dim, o.ffn);
      if (st.ok()) st = s.Matrix(p + "ffn_down.weight", o.ffn, o.dim);
      if (st.ok()) st = s.Matrix(p + "ffn_up.weight", o.dim, o.ffn);
    }
    if (st.ok()) st = s.Vector(p + "ffn_norm.weight", o.dim, 1.0f);
  }
  if (!st.ok()) return st;
  return w.Write(out_path);
}

}  // namespace lumen::tools
