// `lumen`: the command-line client and model tool box.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "base/openmp_wait.h"
#include "tools/lumen/client_common.h"
#include "tools/lumen/commands.h"

namespace lumen::tools {

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "lumen: %s\n", message.c_str());
  return code;
}

std::optional<int> ParseOrHelp(FlagSet* flags, const Args& args) {
  if (absl::Status s = flags->Parse(args); !s.ok())
    return Fail(std::string(s.message()), 2);
  if (flags->help_requested()) {
    std::fputs(flags->Help().c_str(), stdout);
    return 0;
  }
  return std::nullopt;
}

std::optional<int> ParseOrHelp(FlagSet* flags, const Args& args,
                               ClientFlags* client) {
  if (auto rc = ParseOrHelp(flags, args)) return rc;
  if (absl::Status s = client->LoadTls(); !s.ok())
    return Fail(std::string(s.message()), 2);
  return std::nullopt;
}

namespace {

constexpr char kUsage[] =
    "usage: lumen <command> [flags]\n"
    "\n"
    "client (talks to lumend; --addr HOST:PORT, --api-key KEY):\n"
    "  generate --prompt TEXT [--model M] [--adapter A] [--max-tokens N] "
    "[--temperature T] [--seed S] [--json]\n"
    "           [--json-schema FILE | --json-object | --regex RE | --grammar "
    "FILE]\n"
    "                                     constrained output "
    "(docs/structured-output.md)\n"
    "  chat [--model M] [--system TEXT]   interactive, streaming\n"
    "       [--tools FILE [--tool-choice auto|none|required|NAME]]\n"
    "                                     tool calls printed, results read "
    "from stdin\n"
    "  tokenize [--model M] [--text T]    token ids as a JSON list\n"
    "  embed --text T [--text T...]       sentence embeddings (needs "
    "--embedding-model)\n"
    "  models | health | stats\n"
    "  adapter list | load NAME PATH [--model M] | unload NAME\n"
    "                                     LoRA adapters of a running lumend\n"
    "  collection create NAME [--share T] | list | delete NAME | reembed NAME\n"
    "  ingest --collection C PATH...     .txt/.md files, directories "
    "recursively\n"
    "  search --collection C --query TEXT [--top-k K] [--mode "
    "hybrid|vector|keyword]\n"
    "  bench --concurrency 1,4,16,64 --requests N --prompt-tokens P "
    "--max-tokens T [--warmup N] [--json]\n"
    "\n"
    "model tools (no daemon):\n"
    "  model inspect FILE [--base BASE.gguf] [--json]\n"
    "                                     architecture, parameters, sizes, "
    "tokenizer\n"
    "  model tokenize FILE [--no-bos] [--parse-special]\n"
    "                                     text on stdin -> token ids (JSON "
    "list)\n"
    "  model render-chat FILE --messages JSON [--tools JSON] "
    "[--chat-template C]\n"
    "                                     the prompt a chat request becomes\n"
    "  model synth --arch A ... OUT.gguf  random-weight model for tests and "
    "benchmarks\n"
    "  model synth-lora --base BASE.gguf --rank R --alpha A --targets "
    "q,k,v,o,gate,up,down OUT.gguf\n"
    "                                     random LoRA adapter for a base "
    "model\n"
    "  model quantize IN.gguf OUT.gguf --type "
    "q4_k_m|q5_k_m|q6_k|q4_0|q8_0|...\n"
    "                 [--pure]            llama-quantize's presets and "
    "per-tensor mix\n"
    "  model convert-llama2c CKPT TOKENIZER OUT.gguf\n"
    "  model generate FILE --prompt TEXT --max-tokens N [--temperature T] "
    "[--seed S]\n"
    "                 [--weights auto|f32|int8] [--threads N] [--ids]\n"
    "\n"
    "benchmarks:\n"
    "  bench engine --model FILE [--weights auto|f32|int8] [--threads N] "
    "[--only prefill|decode] [--seqs LIST] "
    "[--json]\n"
    "\n"
    "Run a command with --help for its flags.\n";

}  // namespace
}  // namespace lumen::tools

int main(int argc, char** argv) {
  using namespace lumen::tools;
  lumen::UseLumenOpenMpWaitPolicy(argv);
  Args args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string group = args[0];
  if (group == "model") {
    static const std::map<std::string, int (*)(const Args&)> kModel = {
        {"inspect", ModelInspect},   {"tokenize", ModelTokenize},
        {"synth", ModelSynth},       {"convert-llama2c", ConvertLlama2c},
        {"generate", ModelGenerate}, {"synth-lora", ModelSynthLora},
        {"quantize", ModelQuantize}, {"render-chat", ModelRenderChat},
    };
    if (args.size() < 2 || !kModel.contains(args[1])) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    return kModel.at(args[1])(Args(args.begin() + 2, args.end()));
  }
  if (group == "bench" && args.size() >= 2 && args[1] == "engine") {
    return BenchEngine(Args(args.begin() + 2, args.end()));
  }
  static const std::map<std::string, int (*)(const Args&)> kClient = {
      {"generate", ClientGenerate}, {"chat", ClientChat},
      {"tokenize", ClientTokenize}, {"models", ClientModels},
      {"health", ClientHealth},     {"stats", ClientStats},
      {"bench", ClientBench},       {"collection", ClientCollection},
      {"ingest", ClientIngest},     {"search", ClientSearch},
      {"embed", ClientEmbed},       {"adapter", ClientAdapter},
  };
  if (kClient.contains(group))
    return kClient.at(group)(Args(args.begin() + 1, args.end()));
  std::fprintf(stderr, "lumen: unknown command '%s'\n\n%s", group.c_str(),
               kUsage);
  return 2;
}
