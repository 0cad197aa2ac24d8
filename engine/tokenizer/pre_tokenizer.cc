#include "engine/tokenizer/pre_tokenizer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/unicode.h"

namespace lumen::engine {

namespace {

// The regex lists, as llama.cpp spells them per pre-tokenizer family.
constexpr const char* kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| "
    "?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}"
    "\\p{N}]?"
    "\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}"
    "\\p{N}]?"
    "\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kCjk = "[一-龥ࠀ-一가-퟿]+";

struct Family {
  std::vector<absl::string_view> names;
  std::vector<absl::string_view> regexes;
};

const std::vector<Family>& Families() {
  static const auto* families = new std::vector<Family>{
      {{"default"},
       {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"},
       {kLlama3}},
      {{"qwen2", "stablelm2", "hunyuan", "deepseek-r1-qwen"}, {kQwen2}},
      {{"deepseek-llm"},
       {"[\r\n]",
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ"
        "-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-"
        "ᵷᵹ-"
        "ᶚḀ-"
        "ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-"
        "Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-"
        "ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
        "ﬗＡ-"
        "Ｚａ-"
        "ｚ𐐀-"
        "𐑏𐒰"
        "-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", kCjk, "\\p{N}+"}},
      {{"deepseek-coder"},
       {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", kCjk, "\\p{N}"}},
      {{"falcon"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
        "minerva-7b"},
       {"\\p{N}", kGpt2}},
      {{"gpt-2", "gpt2", "mpt", "olmo", "jais", "phi-2", "jina-es", "jina-de",
        "gpt3-finnish", "poro-chat", "viking", "bloom", "gpt-neox"},
       {kGpt2}},
  };
  return *families;
}

}  // namespace

std::vector<std::string> PreTokenizer::KnownNames() {
  std::vector<std::string> names;
  for (const Family& f : Families()) {
    for (absl::string_view n : f.names) names.emplace_back(n);
  }
  return names;
}

absl::StatusOr<PreTokenizer> PreTokenizer::ForName(absl::string_view pre) {
  for (const Family& f : Families()) {
    for (absl::string_view n : f.names) {
      if (n != pre) continue;
      PreTokenizer p;
      for (absl::string_view re : f.regexes) {
        ASSIGN_OR_RETURN(Regex compiled, Regex::Compile(re));
        p.regexes_.push_back(std::move(compiled));
      }
      return p;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown pre-tokenizer '", pre,
      "' (tokenizer.ggml.pre); known: ", absl::StrJoin(KnownNames(), ", ")));
}

void PreTokenizer::Split(absl::string_view text,
                         std::vector<std::string>* words) const {
  const std::vector<uint32_t> cps = DecodeUtf8(text);
  const int n = static_cast<int>(cps.size());
  std::vector<int> ends = {n};
  std::vector<int> next;
  for (const Regex& re : regexes_) {
    next.clear();
    int begin = 0;
    for (int end : ends) {
      re.Split(cps.data(), begin, end, &next);
      begin = end;
    }
    ends.swap(next);
  }
  int begin = 0;
  for (int end : ends) {
    std::string word;
    for (int i = begin; i < end; ++i) AppendUtf8(cps[i], &word);
    words->push_back(std::move(word));
    begin = end;
  }
}

}  // namespace lumen::engine
