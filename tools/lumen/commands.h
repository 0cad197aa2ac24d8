#pragma once
// Entry points of the `lumen` subcommands. Each takes the arguments after its
// own name and returns the process exit code (0 ok, 1 failure, 2 usage).

#include <optional>
#include <string>
#include <vector>

#include "base/flags.h"

namespace lumen::tools {

using Args = std::vector<std::string>;

struct ClientFlags;  // client_common.h

int ModelInspect(const Args& args);
int ModelTokenize(const Args& args);
int ModelRenderChat(const Args& args);
int ModelSynth(const Args& args);
int ModelQuantize(const Args& args);
int ModelSynthLora(const Args& args);
int ConvertLlama2c(const Args& args);
int ModelGenerate(const Args& args);
int BenchEngine(const Args& args);
int ClientGenerate(const Args& args);
int ClientChat(const Args& args);
int ClientTokenize(const Args& args);
int ClientModels(const Args& args);
int ClientHealth(const Args& args);
int ClientStats(const Args& args);
int ClientAdapter(const Args& args);
int ClientBench(const Args& args);
int ClientCollection(const Args& args);
int ClientIngest(const Args& args);
int ClientSearch(const Args& args);
int ClientEmbed(const Args& args);

// Prints "lumen: <message>" to stderr; returns `code`.
int Fail(const std::string& message, int code = 1);

// Parses `args` into `flags`. Returns an exit code when the command should
// stop here (bad flags: 2, --help printed: 0), nullopt to go on.
std::optional<int> ParseOrHelp(FlagSet* flags, const Args& args);
// The same for a client command, then reads its --tls-* files (exit code 2
// naming the flag when one cannot be read).
std::optional<int> ParseOrHelp(FlagSet* flags, const Args& args,
                               ClientFlags* client);

}  // namespace lumen::tools
