#include "engine/tokenizer/vocab.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "engine/tokenizer/special_token_rules.h"

namespace lumen::engine {

absl::string_view VocabTypeName(VocabType type) {
  switch (type) {
    case VocabType::kSpm:
      return "spm";
    case VocabType::kBpe:
      return "bpe";
    case VocabType::kWpm:
      return "wpm";
  }
  return "?";
}

bool Vocab::IsControl(int32_t id) const {
  return id >= 0 && id < size() && types[id] == TokenType::kControl;
}

int32_t Vocab::Find(absl::string_view text) const {
  auto it = token_to_id.find(text);
  return it == token_to_id.end() ? -1 : it->second;
}

namespace {

absl::StatusOr<int32_t> OptionalId(const GgufFile& f, absl::string_view key,
                                   int32_t fallback, int32_t n_vocab) {
  ASSIGN_OR_RETURN(int64_t id, f.GetIntOr(key, fallback));
  if (id < -1 || id >= n_vocab) {
    // llama.cpp treats out-of-range ids as absent; so do we, rather than fail.
    return -1;
  }
  return static_cast<int32_t>(id);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Vocab>> Vocab::FromGguf(const GgufFile& f) {
  auto v = std::make_unique<Vocab>();
  ASSIGN_OR_RETURN(absl::string_view model,
                   f.GetString("tokenizer.ggml.model"));
  v->model = std::string(model);
  if (model == "llama") {
    v->type = VocabType::kSpm;
  } else if (model == "gpt2") {
    v->type = VocabType::kBpe;
  } else if (model == "bert") {
    v->type = VocabType::kWpm;
  } else {
    return absl::UnimplementedError(absl::StrCat(
        "tokenizer model '", model, "' is not supported (llama, gpt2, bert)"));
  }
  if (const GgufValue* pre = f.Find("tokenizer.ggml.pre");
      pre != nullptr && pre->type == GgufValueType::kString) {
    v->pre = std::string(pre->str);
  } else {
    v->pre = "default";
  }

  ASSIGN_OR_RETURN(const GgufValue* tokens,
                   f.GetArray("tokenizer.ggml.tokens", GgufValueType::kString));
  const int32_t n = static_cast<int32_t>(tokens->elems.size());
  if (n == 0)
    return absl::InvalidArgumentError("tokenizer.ggml.tokens is empty");
  v->tokens.reserve(n);
  v->token_to_id.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    v->tokens.emplace_back(tokens->elems[i].str);
    v->token_to_id.emplace(v->tokens.back(), i);  // first occurrence wins
    v->max_token_bytes = std::max(v->max_token_bytes, v->tokens.back().size());
  }
  v->scores.assign(n, 0.0f);
  if (f.Find("tokenizer.ggml.scores") != nullptr) {
    ASSIGN_OR_RETURN(
        const GgufValue* scores,
        f.GetArray("tokenizer.ggml.scores", GgufValueType::kFloat32));
    if (static_cast<int32_t>(scores->elems.size()) != n) {
      return absl::InvalidArgumentError(
          "tokenizer.ggml.scores and tokenizer.ggml.tokens differ in length");
    }
    for (int32_t i = 0; i < n; ++i) v->scores[i] = scores->elems[i].f64;
  }
  v->types.assign(n, TokenType::kNormal);
  if (f.Find("tokenizer.ggml.token_type") != nullptr) {
    ASSIGN_OR_RETURN(
        const GgufValue* types,
        f.GetArray("tokenizer.ggml.token_type", GgufValueType::kInt32));
    if (static_cast<int32_t>(types->elems.size()) != n) {
      return absl::InvalidArgumentError(
          "tokenizer.ggml.token_type and tokenizer.ggml.tokens differ in "
          "length");
    }
    for (int32_t i = 0; i < n; ++i) {
      const int64_t t = types->elems[i].i64;
      v->types[i] =
          (t >= 1 && t <= 6) ? static_cast<TokenType>(t) : TokenType::kNormal;
    }
  }

  if (v->type == VocabType::kBpe) {
    ASSIGN_OR_RETURN(
        const GgufValue* merges,
        f.GetArray("tokenizer.ggml.merges", GgufValueType::kString));
    v->merge_rank.reserve(merges->elems.size());
    for (size_t r = 0; r < merges->elems.size(); ++r) {
      absl::string_view m = merges->elems[r].str;
      // The separator is the first space after the first character, as in
      // llama.cpp (a token may itself be a lone space).
      const size_t sp = m.find(' ', 1);
      if (sp == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tokenizer.ggml.merges[", r, "] has no space: '", m, "'"));
      }
      const int32_t left = v->Find(m.substr(0, sp));
      const int32_t right = v->Find(m.substr(sp + 1));
      if (left < 0 || right < 0) continue;  // can never apply
      const uint64_t key =
          (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
      v->merge_rank.emplace(key, static_cast<int32_t>(r));
    }
  }

  // llama.cpp's defaults per tokenizer model.
  int32_t bos = -1, eos = -1, unk = -1, sep = -1, pad = -1;
  switch (v->type) {
    case VocabType::kSpm:
      bos = 1;
      eos = 2;
      unk = 0;
      v->add_bos = true;
      v->add_space_prefix = true;
      break;
    case VocabType::kBpe:
      bos = 11;
      eos = 11;
      break;
    case VocabType::kWpm:
      bos = 101;
      eos = 102;
      unk = 100;
      sep = 102;
      pad = 0;
      v->add_bos = true;
      v->add_eos = true;
      break;
  }
  ASSIGN_OR_RETURN(v->bos,
                   OptionalId(f, "tokenizer.ggml.bos_token_id", bos, n));
  ASSIGN_OR_RETURN(v->eos,
                   OptionalId(f, "tokenizer.ggml.eos_token_id", eos, n));
  ASSIGN_OR_RETURN(v->unk,
                   OptionalId(f, "tokenizer.ggml.unknown_token_id", unk, n));
  ASSIGN_OR_RETURN(v->sep,
                   OptionalId(f, "tokenizer.ggml.seperator_token_id", sep, n));
  ASSIGN_OR_RETURN(v->pad,
                   OptionalId(f, "tokenizer.ggml.padding_token_id", pad, n));
  ASSIGN_OR_RETURN(v->eot, OptionalId(f, "tokenizer.ggml.eot_token_id", -1, n));
  if (v->eot < 0) {
    // As llama.cpp: recognize the end-of-turn token of common chat formats.
    for (absl::string_view text :
         {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
          "<|endoftext|>", "<|end_of_text|>", "<EOT>",
          "<|END_OF_TURN_TOKEN|>"}) {
      const int32_t id = v->Find(text);
      if (id >= 0 && id != v->eos) {
        v->eot = id;
        break;
      }
    }
  }
  ASSIGN_OR_RETURN(v->add_bos,
                   f.GetBoolOr("tokenizer.ggml.add_bos_token", v->add_bos));
  ASSIGN_OR_RETURN(v->add_eos,
                   f.GetBoolOr("tokenizer.ggml.add_eos_token", v->add_eos));
  ASSIGN_OR_RETURN(
      v->add_space_prefix,
      f.GetBoolOr("tokenizer.ggml.add_space_prefix", v->add_space_prefix));
  if (v->type == VocabType::kBpe &&
      (v->pre == "llama3" || v->pre == "llama-v3" || v->pre == "llama-bpe" ||
       v->pre == "falcon3" || v->pre == "tekken")) {
    v->ignore_merges = true;
  }
  if (const GgufValue* t = f.Find("tokenizer.chat_template");
      t != nullptr && t->type == GgufValueType::kString) {
    v->chat_template = std::string(t->str);
  }

  if (v->type == VocabType::kWpm) {
    ASSIGN_OR_RETURN(v->lowercase,
                     f.GetBoolOr("tokenizer.ggml.normalizer.lowercase", true));
    ASSIGN_OR_RETURN(
        v->strip_accents,
        f.GetBoolOr("tokenizer.ggml.normalizer.strip_accents", v->lowercase));
  }

  ApplyControlTokenRules(f, v.get());
  for (int32_t i = 0; i < n; ++i) {
    const TokenType t = v->types[i];
    if ((t == TokenType::kControl || t == TokenType::kUserDefined ||
         t == TokenType::kUnknown) &&
        !v->tokens[i].empty()) {
      v->special_tokens.push_back({i});
    }
  }
  std::stable_sort(v->special_tokens.begin(), v->special_tokens.end(),
                   [&](const SpecialToken& a, const SpecialToken& b) {
                     return v->tokens[a.id].size() > v->tokens[b.id].size();
                   });
  ApplyWhitespaceStripRules(f, v.get());
  for (int b = 0; b < 256; ++b) {
    const int32_t id = v->Find(absl::StrFormat("<0x%02X>", b));
    v->byte_tokens[b] = id >= 0 ? id : v->unk;
  }
  return v;
}

}  // namespace lumen::engine
