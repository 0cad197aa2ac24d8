// The offline `lumen model ...` commands, run as a user would run them.

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_support.h"

namespace lumen {
namespace {

using testing::BinPath;
using ::testing::HasSubstr;
using testing::RunCommand;
using testing::TestDataPath;

std::string Lumen() { return BinPath("lumen"); }

TEST(ModelInspectTest, ReportsStories260K) {
  auto r = RunCommand(Lumen() + " model inspect " +
                      TestDataPath("models/stories260K.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("parameters      292,800"));
  EXPECT_THAT(r.out, HasSubstr("grouped-query (2 query heads per kv head)"));
  EXPECT_THAT(r.out, HasSubstr("1,280 bytes per token"));
  EXPECT_THAT(r.out, HasSubstr("llama (spm), 512 tokens"));
  EXPECT_THAT(r.out, HasSubstr("chat template   absent; renders as family "
                               "chatml (the file has no template"));

  auto j = RunCommand(Lumen() + " model inspect --json " +
                      TestDataPath("models/stories260K.gguf"));
  ASSERT_EQ(j.exit_code, 0);
  EXPECT_THAT(j.out, HasSubstr("\"parameters\":292800"));
  EXPECT_THAT(j.out, HasSubstr("\"fp32\":1171200,\"fp16\":585600"));
  EXPECT_THAT(j.out, HasSubstr("\"vocab_size\":512"));
}

TEST(ModelInspectTest, ReportsActiveParametersOfMoeAndAdapterShare) {
  const std::string dir = testing::MakeTempDir();
  auto synth = RunCommand(
      Lumen() +
      " model synth --arch mixtral --dim 64 --layers 2 --heads 4 --kv-heads 2 "
      "--ffn 32 --experts 4 --experts-used 2 --ctx 128 --vocab-from " +
      TestDataPath("vocab/ggml-vocab-llama-spm.gguf") + " " + dir +
      "/moe.gguf");
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  auto moe = RunCommand(Lumen() + " model inspect " + dir + "/moe.gguf");
  ASSERT_EQ(moe.exit_code, 0) << moe.err;
  // 2,048,000 embedding + 64 norm + 2 x (12,288 attention + 128 norms + 256
  // router + 24,576 experts); a token uses 2 of the 4 experts.
  EXPECT_THAT(moe.out, HasSubstr("parameters      2,122,560"));
  EXPECT_THAT(moe.out, HasSubstr("active          2,097,984 per token (2 of 4 "
                                 "experts; experts hold 49,152)"));
  EXPECT_THAT(moe.out,
              HasSubstr("experts         4, 2 used per token, width 32"));
  auto gen = RunCommand(Lumen() + " model generate " + dir +
                        "/moe.gguf --prompt Hello --max-tokens 4 --ids");
  EXPECT_EQ(gen.exit_code, 0) << gen.err;

  auto lora = RunCommand(Lumen() + " model synth-lora --base " +
                         TestDataPath("models/stories260K.gguf") +
                         " --rank 8 --alpha 16 --targets q,v --seed 2 " + dir +
                         "/lora.gguf");
  ASSERT_EQ(lora.exit_code, 0) << lora.err;
  auto info =
      RunCommand(Lumen() + " model inspect " + dir + "/lora.gguf --base " +
                 TestDataPath("models/stories260K.gguf"));
  ASSERT_EQ(info.exit_code, 0) << info.err;
  // 5 layers x rank 8 x ((64 + 64) for q + (64 + 32) for v).
  EXPECT_THAT(info.out, HasSubstr("adapter         LoRA for llama, alpha 16, "
                                  "rank 8"));
  EXPECT_THAT(
      info.out,
      HasSubstr("parameters      8,960 = 3.060% of the base's 292,800"));
  auto bad = RunCommand(Lumen() + " model synth-lora --base " +
                        TestDataPath("models/stories260K.gguf") +
                        " --targets q,embd " + dir + "/x.gguf");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("'embd' is not one of q, k, v, o, gate, up, "
                                 "down"));
}

TEST(ModelInspectTest, MalformedFileFailsWithExitCode1) {
  const std::string dir = testing::MakeTempDir();
  const std::string bad = dir + "/bad.gguf";
  RunCommand("head -c 100 " + TestDataPath("models/stories260K.gguf") + " > " +
             bad);
  auto r = RunCommand(Lumen() + " model inspect " + bad);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("byte offset"));
  auto missing = RunCommand(Lumen() + " model inspect " + dir + "/nope.gguf");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("No such file"));
  auto usage = RunCommand(Lumen() + " model inspect");
  EXPECT_EQ(usage.exit_code, 2);
}

// `lumen model render-chat`: the prompt a chat request becomes.
TEST(ModelRenderChatTest, RendersTheTemplateInsideTheFile) {
  // ggml-vocab-phi-3.gguf carries Phi-3's own template; expected rendering
  // from Python's jinja2.
  const std::string phi3 = TestDataPath("vocab/ggml-vocab-phi-3.gguf");
  auto inspect = RunCommand(Lumen() + " model inspect " + phi3);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_THAT(inspect.out, HasSubstr("chat template   tokenizer.chat_template "
                                     "(Jinja, 269 bytes; no system role)"));
  auto r =
      RunCommand(Lumen() + " model render-chat " + phi3 +
                 R"( --messages '[{"role": "system", "content": "Be brief."},
          {"role": "user", "content": "Hi"},
          {"role": "assistant", "content": "Hello!"},
          {"role": "user", "content": "What is \u4e2d\u6587?"}]')");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "<s><|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\n"
            "What is \xE4\xB8\xAD\xE6\x96\x87?<|end|>\n<|assistant|>\n");
  EXPECT_THAT(r.err, HasSubstr("chat template: tokenizer.chat_template"));
}

TEST(ModelRenderChatTest, JinjaFileWithToolsMatchesExpected) {
  // A .jinja path renders for any model: Qwen3's template over stories260K
  // gives expected.json's rendering, tools included.
  const nlohmann::ordered_json expected = nlohmann::ordered_json::parse(
      testing::ReadFile(TestDataPath("templates/expected.json")));
  const auto& conversation = expected["conversations"]["tools-offered"];
  const std::string dir = testing::MakeTempDir();
  std::ofstream(dir + "/messages.json") << conversation["messages"].dump();
  std::ofstream(dir + "/tools.json") << conversation["tools"].dump();
  auto r = RunCommand(
      Lumen() + " model render-chat " +
      TestDataPath("models/stories260K.gguf") + " --chat-template " +
      TestDataPath("templates/Qwen-Qwen3-0.6B.jinja") + " --messages @" + dir +
      "/messages.json --tools @" + dir + "/tools.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected["templates"]["Qwen-Qwen3-0.6B.jinja"]["renderings"]
                           ["tools-offered"]["text"]
                               .get<std::string>());
  EXPECT_THAT(r.err, HasSubstr("chat template: file "));
}

TEST(ModelRenderChatTest, FamiliesAndErrors) {
  const std::string stories = TestDataPath("models/stories260K.gguf");
  auto chatml =
      RunCommand(Lumen() + " model render-chat " + stories +
                 R"( --messages '[{"role": "user", "content": "Hi"}]')");
  ASSERT_EQ(chatml.exit_code, 0) << chatml.err;
  EXPECT_EQ(chatml.out,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_THAT(chatml.err, HasSubstr("llama.cpp's default"));
  auto llama3 = RunCommand(
      Lumen() + " model render-chat " + stories +
      R"( --chat-template llama3 --no-generation-prompt --messages '[{"role": "user", "content": "Hi"}]')");
  ASSERT_EQ(llama3.exit_code, 0) << llama3.err;
  EXPECT_EQ(llama3.out,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi"
            "<|eot_id|>");
  // The template's own error, verbatim; bad input named; bad flags exit 2.
  auto gemma = RunCommand(
      Lumen() + " model render-chat " + stories + " --chat-template " +
      TestDataPath("templates/google-gemma-2-2b-it.jinja") +
      R"( --messages '[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]')");
  EXPECT_EQ(gemma.exit_code, 1);
  EXPECT_THAT(gemma.err, HasSubstr("lumen: System role not supported"));
  auto bad = RunCommand(Lumen() + " model render-chat " + stories +
                        R"( --messages '[{"content": "no role"}]')");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err,
              HasSubstr("messages[0].role must be a non-empty string"));
  auto not_json = RunCommand(Lumen() + " model render-chat " + stories +
                             " --messages '[{'");
  EXPECT_EQ(not_json.exit_code, 2);
  EXPECT_THAT(not_json.err, HasSubstr("--messages is not valid JSON"));
  auto unknown = RunCommand(Lumen() + " model render-chat " + stories +
                            R"( --chat-template vicuna --messages '[]')");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("unknown chat template 'vicuna'"));
}

TEST(ModelInspectTest, NamesTheTemplatesOfTheFile) {
  // A vocabulary file with a default and a tool_use template added. With
  // tools the tool_use template renders, so its capabilities are reported
  // (it prints the tools, not earlier tool calls).
  auto source =
      engine::GgufFile::Open(TestDataPath("vocab/ggml-vocab-llama-spm.gguf"));
  ASSERT_TRUE(source.ok());
  engine::GgufWriter writer;
  for (const auto& kv : (*source)->metadata())
    writer.CopyValue(std::string(kv.key), kv.value);
  writer.SetString(
      "tokenizer.chat_template",
      testing::ReadFile(TestDataPath("templates/Qwen-Qwen3-0.6B.jinja")));
  writer.SetString("tokenizer.chat_template.tool_use",
                   "{{ bos_token }}TOOLS {{ "
                   "tools|map(attribute='function.name')|join(',') }}");
  const std::string path = testing::MakeTempDir() + "/templated.gguf";
  ASSERT_TRUE(writer.Write(path).ok());
  auto inspect = RunCommand(Lumen() + " model inspect " + path);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_THAT(inspect.out,
              HasSubstr("chat template   tokenizer.chat_template "
                        "(tokenizer.chat_template.tool_use for requests with "
                        "tools) (Jinja, 4116 bytes; tools); named: "
                        "tool_use"));
  auto tools = RunCommand(
      Lumen() + " model render-chat " + path +
      R"( --messages '[{"role": "user", "content": "Hi"}]' --tools '[{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}]')");
  ASSERT_EQ(tools.exit_code, 0) << tools.err;
  EXPECT_EQ(tools.out, "<s>TOOLS a,b");
}

TEST(ModelTokenizeTest, MatchesVectorsAndAddsBos) {
  auto plain = RunCommand(Lumen() + " model tokenize --no-bos " +
                              TestDataPath("vocab/ggml-vocab-gpt-2.gguf"),
                          "Hello world");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, "[15496, 995]\n");
  auto bos = RunCommand(
      Lumen() + " model tokenize " + TestDataPath("models/stories260K.gguf"),
      "Once upon a time");
  EXPECT_EQ(bos.out, "[1, 403, 407, 261, 378]\n");
  auto special =
      RunCommand(Lumen() + " model tokenize --no-bos --parse-special " +
                     TestDataPath("models/stories260K.gguf"),
                 "</s>");
  EXPECT_EQ(special.out, "[2]\n");
}

struct SynthCase {
  std::string arch, type;
  int kv_heads;
  bool untied;
};

class ModelSynthTest : public ::testing::TestWithParam<SynthCase> {};

TEST_P(ModelSynthTest, WritesLoadableModelOfTheRequestedShape) {
  const SynthCase& c = GetParam();
  const std::string out = testing::MakeTempDir() + "/m.gguf";
  auto r = RunCommand(
      absl::StrCat(Lumen(), " model synth --arch ", c.arch,
                   " --dim 64 --layers 3 --heads 4 --kv-heads ", c.kv_heads,
                   " --ffn 96 --ctx 256 --type ", c.type, " --seed 3 ",
                   c.untied ? "--untied " : "", "--vocab-from ",
                   TestDataPath("vocab/ggml-vocab-llama-spm.gguf"), " ", out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto f = engine::GgufFile::Open(out);
  ASSERT_TRUE(f.ok()) << f.status();
  auto cfg = engine::ModelConfig::FromGguf(**f);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->arch, c.arch);
  EXPECT_EQ(cfg->n_embd, 64);
  EXPECT_EQ(cfg->n_layers, 3);
  EXPECT_EQ(cfg->n_kv_heads, c.kv_heads);
  EXPECT_EQ(cfg->n_ff, 96);
  EXPECT_EQ(cfg->n_vocab, 32000);
  EXPECT_EQ(cfg->tied_output, !c.untied);
  EXPECT_EQ(cfg->has_qkv_bias, c.arch == "qwen2");
  const auto* q = (*f)->FindTensor("blk.2.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(engine::GgmlTypeName(q->type), c.type);
  EXPECT_EQ((*f)->FindTensor("blk.0.attn_norm.weight")->type,
            engine::GgmlType::kF32);
  EXPECT_EQ((*f)->FindTensor("blk.0.attn_k.weight")->dims,
            (std::vector<int64_t>{64, 16 * c.kv_heads}));
  // The vocabulary came along and tokenizes like its source.
  auto tok = engine::Tokenizer::FromGguf(**f);
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ((*tok)->Encode("Hello world", false, false),
            (std::vector<int32_t>{15043, 3186}));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ModelSynthTest,
                         ::testing::Values(SynthCase{"llama", "f32", 2, false},
                                           SynthCase{"llama", "q8_0", 4, true},
                                           SynthCase{"llama", "f16", 1, false},
                                           SynthCase{"qwen2", "f32", 2,
                                                     false}));

TEST(ModelSynthTest, RejectsBadShapes) {
  auto r = RunCommand(
      Lumen() + " model synth --dim 65 --heads 4 --vocab-from " +
      TestDataPath("vocab/ggml-vocab-llama-spm.gguf") + " /tmp/x.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--dim must divide by --heads"));
  auto t = RunCommand(Lumen() + " model synth --type q4_0 --vocab-from " +
                      TestDataPath("vocab/ggml-vocab-llama-spm.gguf") +
                      " /tmp/x.gguf");
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_THAT(t.err, HasSubstr("--type q4_0 is not supported"));
}

TEST(ConvertLlama2cTest, MatchesLlamaCppConversionOfStories260K) {
  const std::string out = testing::MakeTempDir() + "/converted.gguf";
  auto r = RunCommand(Lumen() + " model convert-llama2c " +
                      TestDataPath("models/stories260K.bin") + " " +
                      TestDataPath("models/tok512.bin") + " " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto mine = engine::GgufFile::Open(out);
  auto ref = engine::GgufFile::Open(TestDataPath("models/stories260K.gguf"));
  ASSERT_TRUE(mine.ok()) << mine.status();
  ASSERT_TRUE(ref.ok());
  ASSERT_EQ((*mine)->tensors().size(), (*ref)->tensors().size());
  for (const auto& t : (*ref)->tensors()) {
    const auto* m = (*mine)->FindTensor(t.name);
    ASSERT_NE(m, nullptr) << t.name;
    EXPECT_EQ(m->dims, t.dims) << t.name;
    EXPECT_EQ(m->type, t.type) << t.name;
    auto a = (*mine)->TensorData(*m);
    auto b = (*ref)->TensorData(t);
    EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << t.name;
  }
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                          "tokenizer.ggml.token_type"}) {
    const auto* x = (*mine)->Find(key);
    const auto* y = (*ref)->Find(key);
    ASSERT_NE(x, nullptr) << key;
    ASSERT_NE(y, nullptr) << key;
    ASSERT_EQ(x->elems.size(), y->elems.size()) << key;
    for (size_t i = 0; i < x->elems.size(); ++i) {
      EXPECT_EQ(x->elems[i].str, y->elems[i].str) << key << "[" << i << "]";
      EXPECT_EQ(x->elems[i].u64, y->elems[i].u64) << key << "[" << i << "]";
    }
  }
  for (const char* key :
       {"llama.embedding_length", "llama.block_count",
        "llama.attention.head_count", "llama.attention.head_count_kv",
        "llama.feed_forward_length", "llama.rope.dimension_count"}) {
    EXPECT_EQ(*(*mine)->GetInt(key), *(*ref)->GetInt(key)) << key;
  }
}

// `lumen model quantize` then `generate` and `inspect` on its output, as a
// user converts a downloaded f32 model.
TEST(ModelQuantizeTest, QuantizesLoadsAndRuns) {
  const std::string dir = testing::MakeTempDir();
  auto q = RunCommand(Lumen() + " model quantize " +
                      TestDataPath("quants/tiny-f32.gguf") + " " + dir +
                      "/q4km.gguf --type q4_k_m");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_THAT(q.out, HasSubstr("38 tensors (f32 9, q4_K 24, q6_K 5)"));
  EXPECT_THAT(q.out, HasSubstr("file type 15"));
  EXPECT_THAT(q.out, HasSubstr("24 tensors: RMS error"));
  auto inspect = RunCommand(Lumen() + " model inspect " + dir + "/q4km.gguf");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_THAT(inspect.out,
              HasSubstr("tensors         38 (f32 9, q4_K 24, q6_K 5)"));
  auto gen = RunCommand(Lumen() + " model generate " + dir +
                        "/q4km.gguf --prompt Hello --max-tokens 4 --ids");
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_THAT(gen.err, HasSubstr("q6_K"));
  auto bad = RunCommand(Lumen() + " model quantize " +
                        TestDataPath("quants/tiny-f32.gguf") + " " + dir +
                        "/x.gguf --type q9_k");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("unknown --type 'q9_k'; one of f32, f16"));
}

}  // namespace
}  // namespace lumen
