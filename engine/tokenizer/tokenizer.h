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
  // parse_special: control and unknown tokens written in the text ("<s>")
  // become their ids; without it they are plain text, whatever the text.
  // User-defined tokens are always matched (as in llama.cpp); user-defined
  // tokens that are really control markers were made control at load time
  // (special_token_rules.h). Never fails: invalid UTF-8 is encoded too.
  std::vector<int32_t> Encode(absl::string_view text, bool add_special,
                              bool parse_special) const;

  // The raw bytes of one token, as llama.cpp's token_to_piece gives them.
  // NOT necessarily valid UTF-8: a byte-fallback token ("<0xE4>") or a
  // byte-level BPE token can hold part of a character. Send it as a proto
  // `bytes` field, or use TokenToDisplayPiece for a `string` field. Control
  // and unknown tokens give "" unless `render_special`; ids out of range "".
  std::string TokenToPiece(int32_t id, bool render_special = false) const;

  // TokenToPiece made valid UTF-8 for display (logprob token strings, token
  // listings): every byte that is not part of a whole character is written
  // as "<0xE4>", the notation of SPM byte tokens. Valid pieces are unchanged.
  std::string TokenToDisplayPiece(int32_t id,
                                  bool render_special = false) const;

  // Concatenated pieces; for SPM with add_space_prefix the leading space of
  // the first piece is dropped (the inverse of Encode). Raw bytes like
  // TokenToPiece: ids that end inside a character give invalid UTF-8 (pass
  // the result through ToValidUtf8 in base/unicode.h for a `string` field).
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

// Turns a stream of token ids into text that is always valid UTF-8: bytes of
// an unfinished character wait for the next token, and bytes no continuation
// can make valid (a stray byte token, a character cut short by another) become
// U+FFFD. One instance per stream; not thread-safe.
class StreamingDetokenizer {
 public:
  // `at_text_start`: the stream begins the text (e.g. right after BOS), so an
  // SPM tokenizer's added leading space is dropped, as Decode does.
  StreamingDetokenizer(const Tokenizer& tokenizer, bool at_text_start)
      : tokenizer_(tokenizer), first_(at_text_start) {}
  // Text that became complete with this token (possibly empty); valid UTF-8.
  std::string Push(int32_t id);
  // Whatever is still pending (an unfinished character) as U+FFFD, or "".
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
  bool first_;
};

}  // namespace lumen::engine
