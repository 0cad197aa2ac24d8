#pragma once
// Tool calls in a model's output, in its family's format, decided from the
// model's chat template as llama.cpp's chat layer decides it:
//   Hermes / Qwen    <tool_call>{"name": ..., "arguments": {...}}</tool_call>
//   Qwen3-Coder      <tool_call><function=NAME><parameter=P>v</parameter>...
//   Llama 3.1+       {"name": ..., "parameters": {...}} as the whole reply,
//                    or after <|python_tag|>
//   Mistral          [TOOL_CALLS][{"name": ..., "arguments": {...}, "id": ...}]
//                    and [TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...} (v11)
//   Granite          <|tool_call|>[{"name": ..., "arguments": {...}}]
//   generic          a reply that is one JSON object: {"tool_calls": [...]},
//                    {"tool_call": {...}} or {"name": ..., "arguments": ...}
// Text that does not parse as a call stays content: never an error.
//
// ToolCallStreamParser parses incrementally: text that may begin call markup
// is held back (as stop strings are), so no markup reaches the content
// deltas. A call leaves in pieces, as OpenAI streams them: its name as soon
// as the name and the start of its arguments are certain, then its
// arguments as they grow (chat/tool_call_scan.h says when a call is
// certain). A call cut by the end of output keeps its partial arguments
// (unfinished()), as OpenAI's are when max_tokens cuts one. Pure; one parser
// per response, used by one thread.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumen::chat {

enum class ToolCallFormat {
  kGeneric,
  kHermes,
  kQwen3CoderXml,
  kLlama3,
  kMistral,
  kGranite,
};

// "generic", "hermes", "qwen3_coder_xml", "llama3", "mistral", "granite".
absl::string_view ToolCallFormatName(ToolCallFormat format);

// The format of the model whose Jinja chat template is `template_source`
// (empty for a family template: generic).
ToolCallFormat DetectToolCallFormat(absl::string_view template_source);

// A call, or a piece of one: a call's first piece has its name (and the
// model's own id, when it wrote one before the arguments); later pieces,
// with the same index and no name, append to its arguments.
struct ToolCall {
  int index = 0;   // position among the response's calls
  std::string id;  // as the model wrote it (Mistral), else empty
  std::string name;
  std::string arguments;  // JSON object text (so far), without spaces
};

// Adds a piece to whole calls: a first piece starts a call, a later one
// appends to the call of its index.
void MergeToolCall(std::vector<ToolCall>* calls, ToolCall piece);

// What a piece of output adds to the response.
struct ParsedOutput {
  std::string content;
  std::vector<ToolCall> tool_calls;  // pieces, at most one per call
  bool empty() const { return content.empty() && tool_calls.empty(); }
};

class ToolCallStreamParser {
 public:
  explicit ToolCallStreamParser(ToolCallFormat format) : format_(format) {}

  // Takes newly generated text; returns the content and the call pieces
  // that are certain now. Text that could still become call markup stays
  // inside until more text or Finish() decides.
  ParsedOutput Push(absl::string_view text);
  // The end of the output: held-back text becomes content; a call that has
  // begun stays a call, with the arguments it has.
  ParsedOutput Finish();

  // A call's arguments never closed: the output was cut inside it, or its
  // JSON broke.
  bool unfinished() const { return unfinished_; }

 private:
  enum class Region { kNone, kTagged, kLeadingJson };
  void Scan(bool at_end, ParsedOutput* out);
  // Reads the call region at the start of buffer_, sending what is new of
  // its calls. Returns false while more text is needed (and !at_end).
  bool ReadRegion(bool at_end, ParsedOutput* out);
  void EmitContent(absl::string_view text, ParsedOutput* out);

  const ToolCallFormat format_;
  std::string buffer_;  // text not yet emitted
  Region region_ = Region::kNone;
  // Per call of the open region: how much of its arguments has been sent.
  std::vector<size_t> sent_;
  // buffer_'s size at the open region's last scan. A scan reads the whole
  // region, so it waits for the region to grow by 1/64 first: a call of a
  // few hundred bytes is read at every push, a 100 KB one about 500 times.
  size_t scanned_size_ = 0;
  bool at_start_ = true;     // nothing emitted yet (a reply may be a call)
  bool after_call_ = false;  // drop whitespace that follows a call
  bool unfinished_ = false;
  int next_index_ = 0;
};

// The whole output at once: Push(text) then Finish(), pieces merged.
ParsedOutput ParseToolCalls(ToolCallFormat format, absl::string_view text);

}  // namespace lumen::chat
