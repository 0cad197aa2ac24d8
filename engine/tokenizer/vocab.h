#pragma once
// Vocab: the tokenizer data of a GGUF file (tokenizer.ggml.*): token texts,
// scores, types, merges and special token ids, with llama.cpp's defaults for
// keys a file leaves out.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"

namespace lumen::engine {

enum class VocabType { kSpm, kBpe, kWpm };

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Token types are the file's, corrected by special_token_rules.h (so a
// user-defined "</s>" of a converted file becomes a control token, as in
// llama.cpp).
struct Vocab {
  VocabType type = VocabType::kSpm;
  std::string model;  // tokenizer.ggml.model: "llama", "gpt2", "bert"
  std::string pre;    // tokenizer.ggml.pre, "default" when absent

  std::vector<std::string> tokens;  // [n_vocab]
  std::vector<float> scores;        // [n_vocab], 0 when absent
  std::vector<TokenType> types;     // [n_vocab]
  absl::flat_hash_map<std::string, int32_t> token_to_id;
  // BPE merge ranks keyed by (left id << 32 | right id).
  absl::flat_hash_map<uint64_t, int32_t> merge_rank;
  // A token the text partitioner matches literally (control, unknown and
  // user-defined; control and unknown ones only with parse_special).
  struct SpecialToken {
    int32_t id;
    bool lstrip = false;  // the whitespace before a match is dropped
    bool rstrip = false;  // the whitespace after a match is dropped
  };
  std::vector<SpecialToken> special_tokens;  // longest text first
  size_t max_token_bytes = 0;
  int32_t byte_tokens[256];  // SPM byte fallback: id of "<0xXX>", or unk

  int32_t bos = -1, eos = -1, eot = -1, unk = -1, pad = -1, sep = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SPM: prepend a space to the text
  bool ignore_merges = false;     // BPE: whole-word tokens win (llama3)
  // WordPiece normalizer (tokenizer.ggml.normalizer.*): lowercase, and strip
  // accents (decompose, then drop every combining mark). llama.cpp's defaults:
  // lowercase, and strip accents when lowercasing.
  bool lowercase = true;
  bool strip_accents = true;
  std::string chat_template;  // tokenizer.chat_template, may be empty

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  bool IsControl(int32_t id) const;
  // Token id of `text`, or -1.
  int32_t Find(absl::string_view text) const;

  // Reads the vocabulary. InvalidArgument names a missing or malformed key;
  // Unimplemented names an unsupported tokenizer model.
  static absl::StatusOr<std::unique_ptr<Vocab>> FromGguf(const GgufFile& file);
};

absl::string_view VocabTypeName(VocabType type);

}  // namespace lumen::engine
