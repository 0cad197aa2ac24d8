// Tokenization throughput (MB/s of UTF-8 input) per tokenizer type on a large
// mixed English / Chinese / code text, encode and decode.
//   tokenizer_bench [--vocab-dir DIR] [--mb N] [--json]

#include <chrono>
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "base/flags.h"
#include "base/json_writer.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"

namespace {

std::string MixedText(size_t bytes) {
  static const char* kEnglish[] = {
      "Once upon a time, there was a little girl named Lily. ",
      "She loved to play outside in the park with her friends. ",
      "The quick brown fox jumps over the lazy dog; it's 3.14 miles away! ",
      "Retrieval-augmented generation grounds answers in cited passages. "};
  static const char* kChinese[] = {
      "我想在苹果公司工作。", "今天天气很好，我们去公园散步吧！",
      "大型语言模型在中央处理器上运行。", "知识库检索增强生成，引用来源。"};
  static const char* kCode[] = {
      "for (int i = 0; i < n; ++i) { sum += x[i] * w[i]; }\n",
      "def forward(self, x):\n    return self.proj(torch.relu(x)) + 1e-5\n",
      "if err != nil {\n\treturn fmt.Errorf(\"open %s: %w\", path, err)\n}\n"};
  std::mt19937 rng(7);
  std::string out;
  while (out.size() < bytes) {
    switch (rng() % 3) {
      case 0:
        out += kEnglish[rng() % 4];
        break;
      case 1:
        out += kChinese[rng() % 4];
        break;
      default:
        out += kCode[rng() % 3];
        break;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string vocab_dir = "../shared/testdata/vocab";
  int64_t mb = 2;
  bool json = false;
  lumen::FlagSet flags("tokenizer_bench [--vocab-dir DIR] [--mb N] [--json]");
  flags.String("vocab-dir", &vocab_dir, "directory of ggml-vocab-*.gguf files");
  flags.Int("mb", &mb, "megabytes of text to tokenize per tokenizer");
  flags.Bool("json", &json, "print one JSON object");
  if (auto s = flags.Parse(argc, argv); !s.ok() || flags.help_requested()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(),
                 flags.Help().c_str());
    return s.ok() ? 0 : 2;
  }
  const std::string text = MixedText(static_cast<size_t>(mb) << 20);
  struct Case {
    const char* type;
    const char* vocab;
  };
  const Case cases[] = {{"spm (llama)", "ggml-vocab-llama-spm.gguf"},
                        {"bpe (gpt-2)", "ggml-vocab-gpt-2.gguf"},
                        {"bpe (deepseek-llm)", "ggml-vocab-deepseek-llm.gguf"},
                        {"wpm (bert-bge)", "ggml-vocab-bert-bge.gguf"}};
  lumen::JsonWriter w;
  w.BeginObject()
      .Key("input_bytes")
      .Int(text.size())
      .Key("results")
      .BeginArray();
  if (!json) {
    std::printf("input: %.2f MB mixed English/Chinese/code\n",
                text.size() / 1e6);
    std::printf("%-20s %12s %12s %12s\n", "tokenizer", "tokens", "encode MB/s",
                "decode MB/s");
  }
  for (const Case& c : cases) {
    auto file = lumen::engine::GgufFile::Open(vocab_dir + "/" + c.vocab);
    if (!file.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(file.status().message()).c_str());
      return 1;
    }
    auto tok = lumen::engine::Tokenizer::FromGguf(**file);
    if (!tok.ok()) return 1;
    auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = (*tok)->Encode(text, false, false);
    auto t1 = std::chrono::steady_clock::now();
    const std::string back = (*tok)->Decode(ids);
    auto t2 = std::chrono::steady_clock::now();
    const double enc =
        text.size() / 1e6 / std::chrono::duration<double>(t1 - t0).count();
    const double dec =
        text.size() / 1e6 / std::chrono::duration<double>(t2 - t1).count();
    if (json) {
      w.BeginObject()
          .Key("tokenizer")
          .String(c.type)
          .Key("tokens")
          .Int(ids.size())
          .Key("encode_mb_per_s")
          .Double(enc)
          .Key("decode_mb_per_s")
          .Double(dec)
          .EndObject();
    } else {
      std::printf("%-20s %12zu %12.2f %12.2f\n", c.type, ids.size(), enc, dec);
    }
  }
  w.EndArray().EndObject();
  if (json) std::printf("%s\n", w.str().c_str());
  return 0;
}
