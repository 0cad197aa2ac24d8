// The offline `lumen model ...` commands, run as a user would run them.

#include <fstream>

#include "absl/strings/match.h"
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
  EXPECT_THAT(r.out, HasSubstr("640 bytes per token with f16 elements"));
  EXPECT_THAT(r.out, HasSubstr("1,280 with f32"));
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

// One line of `lumen model inspect`'s text output, by its label.
std::string InspectLine(const std::string& out, const std::string& label) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, label + " ")) return std::string(line);
  }
  return "";
}

std::string Thousands(uint64_t v) {
  std::string s = absl::StrCat(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(i, ",");
  return s;
}

// The archs files (llama.cpp's test models of each family): shape, window,
// RoPE and layer as their README and reference.json describe them.
TEST(ModelInspectTest, ReportsEachArchitecturesShapeAndParameters) {
  std::ifstream in(TestDataPath("archs/reference.json"));
  const nlohmann::json ref = nlohmann::json::parse(in);
  struct Expect {
    std::string file, shape, attention, rope, layer;
  };
  const Expect expects[] = {
      {"llama3-rope.gguf",
       "width 128, 4 layers, 4 heads, 2 kv heads, head dim 32, ffn 384",
       "q width 128",
       "adjacent pairs, dim 32, base 500000, frequency factors "
       "(rope_freqs)",
       "attn_norm > qkv > rope > attention > attn_output > +residual > "
       "ffn_norm > swiglu > +residual"},
      {"qwen3.gguf",
       "width 128, 4 layers, 8 heads, 2 kv heads, head dim 32, ffn 384",
       "q width 256", "neox halves, dim 32, base 1e+06",
       "attn_norm > qkv > qk_norm > rope > attention > attn_output > "
       "+residual > ffn_norm > swiglu > +residual"},
      {"gemma3.gguf",
       "width 128, 6 layers, 4 heads, 1 kv heads, head dim 64, ffn 384",
       "q width 256, scale 0.125",
       "neox halves, dim 64, base 1e+06 (sliding-window layers 10000)",
       "attn_norm > qkv > qk_norm > rope > attention > attn_output > "
       "post_attn_norm > +residual > ffn_norm > geglu_tanh > post_ffw_norm > "
       "+residual"},
      {"phi3.gguf",
       "width 128, 4 layers, 4 heads, 2 kv heads, head dim 32, ffn 384",
       "q width 128", "neox halves, dim 32, base 10000",
       "attn_norm > qkv > rope > attention > attn_output > +residual > "
       "ffn_norm > swiglu > +residual"},
      {"phi3-longrope.gguf",
       "width 128, 2 layers, 4 heads, 2 kv heads, head dim 32, ffn 384",
       "tied output",
       "LongRoPE factors: long when the context (rounded up to 256) exceeds "
       "256, else short, attn factor 1.06066",
       "attn_norm > qkv > rope > attention > attn_output > +residual > "
       "ffn_norm > swiglu > +residual"},
  };
  for (const Expect& e : expects) {
    auto r = RunCommand(Lumen() + " model inspect " +
                        TestDataPath("archs/" + e.file));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json& file = ref["files"][e.file];
    EXPECT_THAT(InspectLine(r.out, "architecture"),
                HasSubstr(file["architecture"].get<std::string>()));
    EXPECT_THAT(InspectLine(r.out, "shape"), HasSubstr(e.shape)) << e.file;
    EXPECT_THAT(InspectLine(r.out, "attention"), HasSubstr(e.attention))
        << e.file;
    EXPECT_THAT(InspectLine(r.out, "rope"), HasSubstr(e.rope)) << e.file;
    EXPECT_EQ(InspectLine(r.out, "layer"), "layer           " + e.layer)
        << e.file;
    uint64_t parameters = 0;
    for (const auto& [name, dims] : file["tensors"].items()) {
      uint64_t n = 1;
      for (const auto& d : dims) n *= d.get<uint64_t>();
      parameters += n;
    }
    EXPECT_EQ(InspectLine(r.out, "parameters"),
              "parameters      " + Thousands(parameters))
        << e.file;
  }
  auto gemma = RunCommand(Lumen() + " model inspect " +
                          TestDataPath("archs/gemma3.gguf"));
  EXPECT_EQ(InspectLine(gemma.out, "sliding window"),
            "sliding window  16 tokens on 5 of 6 layers (every 6th layer "
            "attends to the whole context)");
  EXPECT_EQ(InspectLine(gemma.out, "embedding"),
            "embedding       scaled by 11.3137");
  auto json = RunCommand(Lumen() + " model inspect --json " +
                         TestDataPath("archs/gemma3.gguf"));
  ASSERT_EQ(json.exit_code, 0);
  const nlohmann::json j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["hyperparameters"]["sliding_window"], 16);
  EXPECT_EQ(j["hyperparameters"]["sliding_window_layers"], 5);
  EXPECT_EQ(j["hyperparameters"]["q_dim"], 256);
  EXPECT_EQ(j["hyperparameters"]["rope_freq_base_sliding"], 10000.0);
  EXPECT_EQ(j["layer_steps"].size(), 12u);
  EXPECT_EQ(j["engine_supported"], true);
}

// llama.cpp picks Phi-3's LongRoPE factors by the context size; so does
// `lumen model generate --ctx-size`.
TEST(ModelGenerateTest, CtxSizeChoosesLongRopeFactorsLikeLlamaCpp) {
  std::ifstream in(TestDataPath("archs/reference.json"));
  const nlohmann::json ref = nlohmann::json::parse(in);
  for (const auto& c : ref["files"]["phi3-longrope.gguf"]["cases"]) {
    if (c["prompt"] != "Once upon a time") continue;
    const int n_ctx = c["n_ctx"];
    auto r = RunCommand(absl::StrCat(
        Lumen(), " model generate ", TestDataPath("archs/phi3-longrope.gguf"),
        " --prompt 'Once upon a time' --max-tokens 32 --ids --threads 1 ",
        "--ctx-size ", n_ctx));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string last = r.out.substr(r.out.rfind('['));
    EXPECT_EQ(nlohmann::json::parse(last), c["ids"]) << "n_ctx " << n_ctx;
    EXPECT_THAT(r.err, HasSubstr(n_ctx > 256 ? "longrope long factors"
                                             : "longrope short factors"));
  }
}

// libgomp reads its wait policy before main: with neither variable set,
// lumen sets GOMP_SPINCOUNT and re-executes itself (base/openmp_wait.h), and
// an operator's setting is left alone.
TEST(OpenMpWaitTest, ProgramsSetTheirWaitPolicyBeforeLibgompLoads) {
  const std::string bench = " " + Lumen() + " bench engine --model " +
                            TestDataPath("models/stories260K.gguf") +
                            " --steps 2";
  // OMP_DISPLAY_ENV: libgomp itself says what it read, in the image that
  // was exec'd (the first one shows its default).
  auto r = RunCommand(
      "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose" +
      bench);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("OpenMP wait: GOMP_SPINCOUNT=1000\n"));
  EXPECT_THAT(r.err, HasSubstr("GOMP_SPINCOUNT = '1000'"));
  auto passive =
      RunCommand("env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive" + bench);
  ASSERT_EQ(passive.exit_code, 0) << passive.err;
  EXPECT_THAT(passive.out, HasSubstr("OpenMP wait: OMP_WAIT_POLICY=passive\n"));
}

// --kv-cache-type: f16 (default) and f32 give the reference's greedy text on
// stories260K, q8_0 its opening; another value is a usage error naming the
// choices, in the CLI and in lumend.
TEST(ModelGenerateTest, KvCacheTypeFlag) {
  const std::string model = TestDataPath("models/stories260K.gguf");
  const std::string cmd =
      Lumen() + " model generate " + model + " --prompt '' --max-tokens 60";
  auto f16 = RunCommand(cmd);
  auto f32 = RunCommand(cmd + " --kv-cache-type f32");
  ASSERT_EQ(f16.exit_code, 0) << f16.err;
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  EXPECT_THAT(f16.out, HasSubstr("Once upon a time, there was a little girl"));
  EXPECT_EQ(f16.out, f32.out);
  auto q8 = RunCommand(cmd + " --kv-cache-type q8_0");
  ASSERT_EQ(q8.exit_code, 0) << q8.err;
  EXPECT_THAT(q8.out, HasSubstr("Once upon a time, there was a little girl"));
  auto bad = RunCommand(cmd + " --kv-cache-type q4");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err,
              HasSubstr("KV cache type \"q4\" is not one of f32, f16, q8_0"));
  auto daemon = RunCommand(BinPath("lumend") + " --model=" + model +
                           " --kv-cache-type=int4 --listen=127.0.0.1:0");
  EXPECT_EQ(daemon.exit_code, 1);
  EXPECT_THAT(daemon.out + daemon.err,
              HasSubstr("--kv-cache-type: KV cache type \"int4\" is not one "
                        "of f32, f16"));
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

// `lumen model synth --chat-template-file`: the synth model carries the
// template in tokenizer.chat_template, and renders as the same template
// given as a file does (same vocabulary, so the same BOS/EOS).
TEST(ModelRenderChatTest, SynthEmbedsAChatTemplate) {
  const std::string dir = testing::MakeTempDir();
  const std::string stories = TestDataPath("models/stories260K.gguf");
  const std::string jinja =
      TestDataPath("templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
  auto synth = RunCommand(
      Lumen() +
      " model synth --arch llama --dim 64 --layers 1 --heads 4 --kv-heads 4 "
      "--ffn 64 --ctx 256 --vocab-from " +
      stories + " --chat-template-file " + jinja + " " + dir + "/t.gguf");
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  auto inspect = RunCommand(Lumen() + " model inspect " + dir + "/t.gguf");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_THAT(inspect.out,
              HasSubstr(absl::StrCat("chat template   tokenizer.chat_template "
                                     "(Jinja, ",
                                     testing::ReadFile(jinja).size(),
                                     " bytes; tools, tool calls)")));
  const std::string messages =
      R"( --messages '[{"role": "user", "content": "Hi"}]' --tools '[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]')";
  auto embedded =
      RunCommand(Lumen() + " model render-chat " + dir + "/t.gguf" + messages);
  ASSERT_EQ(embedded.exit_code, 0) << embedded.err;
  EXPECT_THAT(embedded.err,
              HasSubstr("chat template: tokenizer.chat_template"));
  auto file = RunCommand(Lumen() + " model render-chat " + stories +
                         " --chat-template " + jinja + messages);
  ASSERT_EQ(file.exit_code, 0) << file.err;
  EXPECT_EQ(embedded.out, file.out);
  EXPECT_THAT(embedded.out, HasSubstr("<|start_header_id|>user"));

  auto missing = RunCommand(
      Lumen() + " model synth --dim 64 --heads 4 --kv-heads 4 --vocab-from " +
      stories + " --chat-template-file " + dir + "/none.jinja " + dir +
      "/u.gguf");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("--chat-template-file: cannot read '"));
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

// The newer families: llama.cpp's tensor names and keys, loadable and
// runnable by the engine.
TEST(ModelSynthTest, WritesEachFamilyWithLlamaCppNames) {
  struct Family {
    std::string arch, flags;
    std::vector<std::string> tensors;  // of layer 0, besides the norms
  };
  const Family families[] = {
      {"qwen3",
       "--head-dim 32",
       {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_q_norm.weight",
        "attn_k_norm.weight", "ffn_gate.weight"}},
      {"qwen3moe",
       "--experts 4 --experts-used 2",
       {"attn_q_norm.weight", "ffn_gate_inp.weight", "ffn_gate_exps.weight",
        "ffn_up_exps.weight", "ffn_down_exps.weight"}},
      {"gemma3",
       "--sliding-window 32",
       {"attn_q_norm.weight", "post_attention_norm.weight",
        "post_ffw_norm.weight", "ffn_gate.weight"}},
      {"phi3",
       "--longrope --ctx 1024 --rope-original-ctx 256",
       {"attn_qkv.weight", "ffn_up.weight", "ffn_down.weight"}},
      {"llama", "--llama3-rope", {"attn_q.weight", "ffn_gate.weight"}},
  };
  for (const Family& fam : families) {
    const std::string out = testing::MakeTempDir() + "/m.gguf";
    auto r = RunCommand(absl::StrCat(
        Lumen(), " model synth --arch ", fam.arch,
        " --dim 64 --layers 6 --heads 4 --kv-heads 2 --ffn 96 ", fam.flags,
        " --vocab-from ", TestDataPath("vocab/ggml-vocab-llama-spm.gguf"), " ",
        out));
    ASSERT_EQ(r.exit_code, 0) << fam.arch << ": " << r.err;
    auto f = engine::GgufFile::Open(out);
    ASSERT_TRUE(f.ok()) << f.status();
    auto cfg = engine::ModelConfig::FromGguf(**f);
    ASSERT_TRUE(cfg.ok()) << fam.arch << ": " << cfg.status();
    EXPECT_EQ(cfg->arch, fam.arch);
    EXPECT_NE(cfg->family, nullptr);
    for (const std::string& t : fam.tensors)
      EXPECT_NE((*f)->FindTensor("blk.0." + t), nullptr)
          << fam.arch << " " << t;
    if (fam.arch == "qwen3") {
      EXPECT_EQ(cfg->q_dim(), 128);
      EXPECT_EQ((*f)->FindTensor("blk.0.attn_q.weight")->dims,
                (std::vector<int64_t>{64, 128}));
    }
    if (fam.arch == "qwen3moe") {
      EXPECT_EQ(cfg->n_ff_expert, 96);
    }
    if (fam.arch == "gemma3") {
      EXPECT_EQ(cfg->sliding_window, 32);
      EXPECT_TRUE(cfg->sliding(4));
      EXPECT_FALSE(cfg->sliding(5));
    }
    if (fam.arch == "phi3") {
      EXPECT_EQ((*f)->FindTensor("blk.0.ffn_up.weight")->dims,
                (std::vector<int64_t>{64, 192}));
      EXPECT_EQ(cfg->rope.factor_tensors,
                engine::RopeFactorTensors::kLongShort);
      EXPECT_EQ(cfg->rope.original_context, 256);
      // llama.cpp special-cases names containing "phi3".
      EXPECT_EQ(cfg->name.find("phi3"), std::string::npos);
    }
    if (fam.arch == "llama") {
      EXPECT_EQ(cfg->rope.factor_tensors, engine::RopeFactorTensors::kFreqs);
      EXPECT_EQ(cfg->rope.base, 500000.0);
    }
    auto gen = RunCommand(Lumen() + " model generate " + out +
                          " --prompt Hello --max-tokens 3 --ids --threads 1");
    EXPECT_EQ(gen.exit_code, 0) << fam.arch << ": " << gen.err;
  }
}

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
