// libFuzzer target for the tool-call parsers: any model output, in any
// family's format, parses without crashing, and streaming it in two pieces
// (split where the input says) gives exactly the one-shot result.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "chat/tool_call_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using lumen::chat::ParsedOutput;
  using lumen::chat::ToolCallFormat;
  if (size < 2) return 0;
  const auto format = static_cast<ToolCallFormat>(data[0] % 6);
  const std::string text(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t cut = text.empty() ? 0 : data[1] % (text.size() + 1);
  const ParsedOutput whole = lumen::chat::ParseToolCalls(format, text);
  lumen::chat::ToolCallStreamParser parser(format);
  ParsedOutput streamed = parser.Push(text.substr(0, cut));
  for (ParsedOutput part : {parser.Push(text.substr(cut)), parser.Finish()}) {
    streamed.content += part.content;
    for (auto& c : part.tool_calls) streamed.tool_calls.push_back(c);
  }
  bool same = whole.content == streamed.content &&
              whole.tool_calls.size() == streamed.tool_calls.size();
  for (size_t i = 0; same && i < whole.tool_calls.size(); ++i) {
    same = whole.tool_calls[i].name == streamed.tool_calls[i].name &&
           whole.tool_calls[i].arguments == streamed.tool_calls[i].arguments &&
           whole.tool_calls[i].id == streamed.tool_calls[i].id;
  }
  if (!same) std::abort();  // streaming must not change the result
  return 0;
}
