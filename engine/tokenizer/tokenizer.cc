#include "engine/tokenizer/tokenizer.h"

#include <list>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "base/status_macros.h"
#include "base/unicode.h"
#include "engine/tokenizer/subword_models.h"
#include "engine/tokenizer/unicode_maps.h"

namespace lumen::engine {

namespace {
constexpr absl::string_view kSpmSpace = "\xe2\x96\x81";  // U+2581

// One piece of input: raw text, or a special token matched literally.
struct Fragment {
  int32_t token;  // -1 for raw text
  absl::string_view text;
};
}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(
    const GgufFile& file) {
  ASSIGN_OR_RETURN(std::unique_ptr<Vocab> vocab, Vocab::FromGguf(file));
  return FromVocab(std::move(vocab));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocab(
    std::unique_ptr<Vocab> vocab) {
  std::unique_ptr<Tokenizer> t(new Tokenizer(std::move(vocab)));
  if (t->vocab_->type == VocabType::kBpe) {
    ASSIGN_OR_RETURN(PreTokenizer pre, PreTokenizer::ForName(t->vocab_->pre));
    t->pre_ = std::move(pre);
  }
  return t;
}

void Tokenizer::EncodeRaw(absl::string_view text, bool after_special,
                          std::vector<int32_t>* out) const {
  switch (vocab_->type) {
    case VocabType::kSpm: {
      std::string escaped;
      if (vocab_->add_space_prefix && after_special) escaped = " ";
      escaped.append(text.data(), text.size());
      escaped = absl::StrReplaceAll(escaped, {{" ", kSpmSpace}});
      SpmEncode(*vocab_, escaped, out);
      break;
    }
    case VocabType::kBpe:
      BpeEncode(*vocab_, *pre_, text, out);
      break;
    case VocabType::kWpm:
      WpmEncode(*vocab_, text, out);
      break;
  }
}

std::vector<int32_t> Tokenizer::Encode(absl::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  const Vocab& v = *vocab_;
  if (add_special && v.add_bos && v.bos >= 0) out.push_back(v.bos);

  // Split special tokens off the raw text, longest token first. Control and
  // unknown tokens are only matched on request: the types were corrected at
  // load time (special_token_rules.h), so this is the one gate that keeps
  // user text from producing them.
  std::list<Fragment> fragments;
  if (!text.empty()) fragments.push_back({-1, text});
  for (const Vocab::SpecialToken& special : v.special_tokens) {
    const TokenType type = v.types[special.id];
    if (!parse_special &&
        (type == TokenType::kControl || type == TokenType::kUnknown)) {
      continue;
    }
    const std::string& needle = v.tokens[special.id];
    for (auto it = fragments.begin(); it != fragments.end(); ++it) {
      if (it->token >= 0) continue;
      const size_t at = it->text.find(needle);
      if (at == absl::string_view::npos) continue;
      absl::string_view before = it->text.substr(0, at);
      absl::string_view after = it->text.substr(at + needle.size());
      if (special.lstrip) before = absl::StripTrailingAsciiWhitespace(before);
      if (special.rstrip) after = absl::StripLeadingAsciiWhitespace(after);
      if (!before.empty()) fragments.insert(it, {-1, before});
      it->token = special.id;
      it->text = needle;
      // Keep scanning the remainder (the loop visits it next).
      if (!after.empty()) fragments.insert(std::next(it), {-1, after});
    }
  }

  bool after_special = true;  // SPM prefixes a space at the start of text
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      EncodeRaw(f.text, after_special, &out);
      after_special = false;
    }
  }

  if (add_special && v.type == VocabType::kWpm && v.sep >= 0) {
    out.push_back(v.sep);
  } else if (add_special && v.add_eos && v.eos >= 0) {
    out.push_back(v.eos);
  }
  return out;
}

std::string Tokenizer::TokenToPiece(int32_t id, bool render_special) const {
  const Vocab& v = *vocab_;
  if (id < 0 || id >= v.size()) return "";
  const std::string& text = v.tokens[id];
  switch (v.types[id]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      return render_special ? text : "";
    case TokenType::kUserDefined:
      return text;
    case TokenType::kUnused:
      return "";
    case TokenType::kByte:
      if (text.size() == 6 && text.compare(0, 3, "<0x") == 0 &&
          text.back() == '>') {
        return std::string(
            1, static_cast<char>(std::stoi(text.substr(3, 2), nullptr, 16)));
      }
      return text;
    case TokenType::kNormal:
      break;
  }
  if (v.type == VocabType::kBpe) {
    std::string bytes;
    for (uint32_t cp : DecodeUtf8(text)) {
      const int b = UnicodeToByte(cp);
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
      } else {
        AppendUtf8(cp, &bytes);
      }
    }
    return bytes;
  }
  return absl::StrReplaceAll(text, {{kSpmSpace, " "}});
}

std::string Tokenizer::TokenToDisplayPiece(int32_t id,
                                           bool render_special) const {
  const std::string piece = TokenToPiece(id, render_special);
  if (IsValidUtf8(piece)) return piece;
  std::string shown;
  absl::string_view rest = piece;
  while (!rest.empty()) {
    const size_t len = Utf8CharLength(rest);
    if (len > 0) {
      shown.append(rest.data(), len);
      rest.remove_prefix(len);
    } else {
      absl::StrAppendFormat(&shown, "<0x%02X>", static_cast<uint8_t>(rest[0]));
      rest.remove_prefix(1);
    }
  }
  return shown;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids,
                              bool render_special) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string piece = TokenToPiece(ids[i], render_special);
    if (i == 0 && vocab_->type == VocabType::kSpm && vocab_->add_space_prefix &&
        !piece.empty() && piece[0] == ' ') {
      piece.erase(0, 1);
    }
    out += piece;
  }
  return out;
}

std::string StreamingDetokenizer::Push(int32_t id) {
  std::string piece = tokenizer_.TokenToPiece(id);
  const Vocab& v = tokenizer_.vocab();
  if (first_ && !piece.empty()) {
    first_ = false;
    if (v.type == VocabType::kSpm && v.add_space_prefix && piece[0] == ' ') {
      piece.erase(0, 1);
    }
  }
  pending_ += piece;
  const size_t keep = IncompleteUtf8Suffix(pending_);
  std::string ready = ToValidUtf8(
      absl::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return ready;
}

std::string StreamingDetokenizer::Flush() {
  std::string rest;
  if (!pending_.empty()) rest = "\xef\xbf\xbd";
  pending_.clear();
  return rest;
}

}  // namespace lumen::engine
