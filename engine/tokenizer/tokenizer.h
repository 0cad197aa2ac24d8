#pragma once
// Tokenizer: text <-> token ids for a GGUF vocabulary (llama SPM, gpt2
// byte-level BPE, bert WordPiece), giving the same ids as llama.cpp.
// Immutable after creation; safe to use from any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/vocab.h"

namespace lumen::engine {

class Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(
      const GgufFile& file);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocab(
      std::unique_ptr<Vocab> vocab);

  // add_special: BOS/EOS (CLS/SEP for bert) as the vocabulary asks.
  // parse_special: control tokens written in the text ("<s>") become their
  // ids; user-defined tokens are always matched.
  std::vector<int32_t> Encode(absl::string_view text, bool add_special,
                              bool parse_special) const;

  // The bytes of one token; may be part of a UTF-8 character. Control and
  // unknown tokens give "" unless `render_special`.
  std::string TokenToPiece(int32_t id, bool render_special = false) const;

  // Concatenated pieces; for SPM with add_space_prefix the leading space of
  // the first piece is dropped (the inverse of Encode).
  std::string Decode(std::span<const int32_t> ids,
                     bool render_special = false) const;

  bool IsEndOfGeneration(int32_t id) const {
    return id == vocab_->eos || id == vocab_->eot;
  }
  const Vocab& vocab() const { return *vocab_; }

 private:
  explicit Tokenizer(std::unique_ptr<Vocab> vocab) : vocab_(std::move(vocab)) {}
  void EncodeRaw(absl::string_view text, bool first_fragment,
                 std::vector<int32_t>* out) const;

  std::unique_ptr<Vocab> vocab_;
  std::optional<PreTokenizer> pre_;  // BPE only
};

// Turns a stream of token ids into text without ever emitting part of a UTF-8
// character: bytes of an unfinished character wait for the next token.
class StreamingDetokenizer {
 public:
  // `at_text_start`: the stream begins the text (e.g. right after BOS), so an
  // SPM tokenizer's added leading space is dropped, as Decode does.
  StreamingDetokenizer(const Tokenizer& tokenizer, bool at_text_start)
      : tokenizer_(tokenizer), first_(at_text_start) {}
  // Text that became complete with this token (possibly empty).
  std::string Push(int32_t id);
  // Whatever is still pending, with an incomplete tail replaced by U+FFFD.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
  bool first_;
};

}  // namespace lumen::engine
