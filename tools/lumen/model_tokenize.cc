// `lumen model tokenize FILE [--no-bos] [--parse-special]`: stdin -> ids.

#include <cstdio>
#include <iostream>
#include <iterator>

#include "base/flags.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "tools/lumen/commands.h"

namespace lumen::tools {

int ModelTokenize(const Args& args) {
  bool no_bos = false, parse_special = false;
  FlagSet flags(
      "lumen model tokenize FILE [--no-bos] [--parse-special] < text");
  flags.Bool("no-bos", &no_bos, "add no BOS/EOS even if the vocabulary asks");
  flags.Bool("parse-special", &parse_special,
             "turn special token text into ids");
  if (auto rc = ParseOrHelp(&flags, args)) return *rc;
  if (flags.positional().size() != 1)
    return Fail("expected one FILE\n" + flags.Help(), 2);
  auto file = engine::GgufFile::Open(flags.positional()[0]);
  if (!file.ok()) return Fail(std::string(file.status().message()));
  auto tokenizer = engine::Tokenizer::FromGguf(**file);
  if (!tokenizer.ok()) return Fail(std::string(tokenizer.status().message()));
  std::string text((std::istreambuf_iterator<char>(std::cin)),
                   std::istreambuf_iterator<char>());
  const std::vector<int32_t> ids =
      (*tokenizer)->Encode(text, !no_bos, parse_special);
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(ids[i]);
  }
  out += "]\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace lumen::tools
