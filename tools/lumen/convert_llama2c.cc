// `lumen model convert-llama2c CHECKPOINT TOKENIZER OUT.gguf`: llama2.c's
// float32 checkpoint (run.c's layout) and tokenizer.bin to a GGUF that
// llama.cpp and Lumen load. llama2.c rotates adjacent pairs like ggml's
// default RoPE, so weights are copied without permutation.

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "base/flags.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/gguf/mapped_file.h"
#include "tools/lumen/commands.h"

namespace lumen::tools {

namespace {

using engine::GgmlType;

class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, std::string what)
      : bytes_(bytes), what_(std::move(what)) {}
  template <typename T>
  absl::StatusOr<T> Read() {
    if (pos_ + sizeof(T) > bytes_.size()) return Truncated();
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  absl::StatusOr<std::vector<uint8_t>> Take(size_t n) {
    if (n > bytes_.size() - pos_) return Truncated();
    std::vector<uint8_t> out(bytes_.begin() + pos_, bytes_.begin() + pos_ + n);
    pos_ += n;
    return out;
  }
  size_t remaining() const { return bytes_.size() - pos_; }

 private:
  absl::Status Truncated() const {
    return absl::InvalidArgumentError(
        absl::StrCat(what_, " is truncated at byte offset ", pos_));
  }
  std::span<const uint8_t> bytes_;
  std::string what_;
  size_t pos_ = 0;
};

#define LUMEN_TRY(lhs, expr)                    \
  auto lhs##_or = (expr);                       \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  auto lhs = std::move(*lhs##_or)

absl::Status AddVocab(const std::string& path, int32_t n_vocab,
                      engine::GgufWriter* w) {
  LUMEN_TRY(file, engine::MappedFile::Open(path));
  Reader r(file->bytes(), path);
  LUMEN_TRY(max_len, r.Read<int32_t>());
  (void)max_len;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int32_t id = 0; id < n_vocab; ++id) {
    LUMEN_TRY(score, r.Read<float>());
    LUMEN_TRY(len, r.Read<int32_t>());
    if (len < 0)
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": negative token length"));
    LUMEN_TRY(raw, r.Take(len));
    std::string text(raw.begin(), raw.end());
    int32_t type = 1;  // normal
    unsigned byte;
    if (id == 0) {
      text = "<unk>", type = 2;
    } else if (id == 1) {
      text = "<s>", type = 3;
    } else if (id == 2) {
      text = "</s>", type = 3;
    } else if (text.empty()) {
      type = 3;
    } else if (text.size() == 6 &&
               std::sscanf(text.c_str(), "<0x%02X>", &byte) == 1) {
      type = 6;
    }
    tokens.push_back(absl::StrReplaceAll(text, {{" ", "\xe2\x96\x81"}}));
    scores.push_back(score);
    types.push_back(type);
  }
  w->SetString("tokenizer.ggml.model", "llama");
  w->SetStringArray("tokenizer.ggml.tokens", std::move(tokens));
  w->SetFloat32Array("tokenizer.ggml.scores", std::move(scores));
  w->SetInt32Array("tokenizer.ggml.token_type", std::move(types));
  w->SetUint32("tokenizer.ggml.unknown_token_id", 0);
  w->SetUint32("tokenizer.ggml.bos_token_id", 1);
  w->SetUint32("tokenizer.ggml.eos_token_id", 2);
  return absl::OkStatus();
}

absl::Status Convert(const std::string& ckpt_path, const std::string& tok_path,
                     const std::string& out_path) {
  LUMEN_TRY(file, engine::MappedFile::Open(ckpt_path));
  Reader r(file->bytes(), ckpt_path);
  int32_t h[7];
  for (int32_t& v : h) {
    LUMEN_TRY(x, r.Read<int32_t>());
    v = x;
  }
  const int64_t dim = h[0], hidden = h[1], layers = h[2], heads = h[3],
                kv_heads = h[4], seq_len = h[6];
  const bool shared = h[5] > 0;
  const int64_t vocab = shared ? h[5] : -static_cast<int64_t>(h[5]);
  if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kv_heads <= 0 ||
      vocab <= 0 || seq_len <= 0 || dim % heads != 0 || heads % kv_heads != 0 ||
      dim > (1 << 16) || hidden > (1 << 18) || layers > 1024 ||
      vocab > (1 << 22)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: implausible llama2.c header dim=%d hidden=%d layers=%d heads=%d "
        "kv_heads=%d vocab=%d seq_len=%d",
        ckpt_path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]));
  }
  const int64_t head = dim / heads, kv_dim = kv_heads * head;

  // Reads `count` stacked f32 tensors of `per` elements each.
  auto take =
      [&](int64_t count,
          int64_t per) -> absl::StatusOr<std::vector<std::vector<uint8_t>>> {
    std::vector<std::vector<uint8_t>> out;
    for (int64_t i = 0; i < count; ++i) {
      LUMEN_TRY(t, r.Take(per * 4));
      out.push_back(std::move(t));
    }
    return out;
  };
  LUMEN_TRY(embd, take(1, vocab * dim));
  LUMEN_TRY(att_norm, take(layers, dim));
  LUMEN_TRY(wq, take(layers, dim * dim));
  LUMEN_TRY(wk, take(layers, dim * kv_dim));
  LUMEN_TRY(wv, take(layers, dim * kv_dim));
  LUMEN_TRY(wo, take(layers, dim * dim));
  LUMEN_TRY(ffn_norm, take(layers, dim));
  LUMEN_TRY(w1, take(layers, hidden * dim));
  LUMEN_TRY(w2, take(layers, dim * hidden));
  LUMEN_TRY(w3, take(layers, hidden * dim));
  LUMEN_TRY(final_norm, take(1, dim));
  LUMEN_TRY(freq, take(2, seq_len * head / 2));  // unused RoPE tables
  std::vector<uint8_t> output = embd[0];
  if (!shared) {
    LUMEN_TRY(cls, take(1, vocab * dim));
    output = std::move(cls[0]);
  }

  engine::GgufWriter w;
  if (absl::Status s = AddVocab(tok_path, vocab, &w); !s.ok()) return s;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", "llama");
  w.SetUint32("llama.context_length", seq_len);
  w.SetUint32("llama.embedding_length", dim);
  w.SetUint32("llama.feed_forward_length", hidden);
  w.SetUint32("llama.attention.head_count", heads);
  w.SetUint32("llama.attention.head_count_kv", kv_heads);
  w.SetUint32("llama.block_count", layers);
  w.SetUint32("llama.rope.dimension_count", head);
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);

  absl::Status st = w.AddTensor("token_embd.weight", GgmlType::kF32,
                                {dim, vocab}, std::move(embd[0]));
  if (st.ok())
    st = w.AddTensor("output_norm.weight", GgmlType::kF32, {dim},
                     std::move(final_norm[0]));
  if (st.ok())
    st = w.AddTensor("output.weight", GgmlType::kF32, {dim, vocab},
                     std::move(output));
  for (int64_t l = 0; l < layers && st.ok(); ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    st = w.AddTensor(p + "attn_q.weight", GgmlType::kF32, {dim, dim},
                     std::move(wq[l]));
    if (st.ok())
      st = w.AddTensor(p + "attn_k.weight", GgmlType::kF32, {dim, kv_dim},
                       std::move(wk[l]));
    if (st.ok())
      st = w.AddTensor(p + "attn_v.weight", GgmlType::kF32, {dim, kv_dim},
                       std::move(wv[l]));
    if (st.ok())
      st = w.AddTensor(p + "attn_output.weight", GgmlType::kF32, {dim, dim},
                       std::move(wo[l]));
    if (st.ok())
      st = w.AddTensor(p + "attn_norm.weight", GgmlType::kF32, {dim},
                       std::move(att_norm[l]));
    if (st.ok())
      st = w.AddTensor(p + "ffn_gate.weight", GgmlType::kF32, {dim, hidden},
                       std::move(w1[l]));
    if (st.ok())
      st = w.AddTensor(p + "ffn_down.weight", GgmlType::kF32, {hidden, dim},
                       std::move(w2[l]));
    if (st.ok())
      st = w.AddTensor(p + "ffn_up.weight", GgmlType::kF32, {dim, hidden},
                       std::move(w3[l]));
    if (st.ok())
      st = w.AddTensor(p + "ffn_norm.weight", GgmlType::kF32, {dim},
                       std::move(ffn_norm[l]));
  }
  if (!st.ok()) return st;
  return w.Write(out_path);
}

}  // namespace

int ConvertLlama2c(const Args& args) {
  FlagSet flags(
      "lumen model convert-llama2c CHECKPOINT.bin TOKENIZER.bin OUT.gguf");
  if (auto rc = ParseOrHelp(&flags, args)) return *rc;
  const auto& p = flags.positional();
  if (p.size() != 3)
    return Fail("expected CHECKPOINT TOKENIZER OUT.gguf\n" + flags.Help(), 2);
  if (absl::Status s = Convert(p[0], p[1], p[2]); !s.ok())
    return Fail(std::string(s.message()));
  std::fprintf(stderr, "wrote %s\n", p[2].c_str());
  return 0;
}

}  // namespace lumen::tools
