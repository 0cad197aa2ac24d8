// libFuzzer target for the tool-call parsers: any model output, in any
// family's format, parses without crashing; streaming it in two pieces
// (split where the input says) gives exactly the one-shot result; and the
// streamed pieces keep OpenAI's delta rules (a call's first piece names it,
// later pieces only append to its arguments).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "chat/tool_call_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using lumen::chat::ParsedOutput;
  using lumen::chat::ToolCall;
  using lumen::chat::ToolCallFormat;
  if (size < 2) return 0;
  const auto format = static_cast<ToolCallFormat>(data[0] % 6);
  const std::string text(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t cut = text.empty() ? 0 : data[1] % (text.size() + 1);
  const ParsedOutput whole = lumen::chat::ParseToolCalls(format, text);
  lumen::chat::ToolCallStreamParser parser(format);
  std::string content;
  std::vector<ToolCall> calls;
  for (ParsedOutput part : {parser.Push(text.substr(0, cut)),
                            parser.Push(text.substr(cut)), parser.Finish()}) {
    content += part.content;
    for (ToolCall& c : part.tool_calls) {
      const bool first = c.index == static_cast<int>(calls.size());
      if (first == c.name.empty()) std::abort();  // first pieces are named
      if (!first && (!c.id.empty() || c.arguments.empty() ||
                     c.index > static_cast<int>(calls.size()))) {
        std::abort();
      }
      lumen::chat::MergeToolCall(&calls, std::move(c));
    }
  }
  bool same =
      whole.content == content && whole.tool_calls.size() == calls.size();
  for (size_t i = 0; same && i < calls.size(); ++i) {
    same = whole.tool_calls[i].name == calls[i].name &&
           whole.tool_calls[i].arguments == calls[i].arguments &&
           whole.tool_calls[i].id == calls[i].id;
  }
  if (!same) std::abort();  // streaming must not change the result
  return 0;
}
