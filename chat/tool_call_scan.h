#pragma once
// The calls in one region of model output, read from as much of it as has
// arrived: the region is the text from a call trigger (<tool_call>,
// [TOOL_CALLS], <|tool_call|>, <|python_tag|>), or a reply that starts
// with '{' in the formats whose whole reply may be a bare JSON call.
//
// A call is certain as soon as its name and the start of its arguments
// object have been seen ({"name": "f", "arguments": {... ; Mistral's
// NAME[ARGS]{... ; Qwen3-Coder's <function=NAME>): from then on the region
// is calls, and the arguments grow as text arrives, so a front end can send
// the name first and then the arguments piece by piece. Before that point
// the region may still turn out to be text (a JSON answer, a malformed
// call), which the stream parser then releases as content.
//
// Scanning a longer prefix of a region never takes back what a shorter one
// found: the calls only grow in number, and each call's arguments only grow
// at their end. That is what makes streamed and one-shot parses agree.
// Arguments are the model's JSON text without the spaces between tokens
// (strings untouched); Qwen3-Coder's parameters become such an object.
// Pure functions; any thread.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "chat/tool_call_parser.h"

namespace lumen::chat::internal {

inline constexpr absl::string_view kHermesOpen = "<tool_call>";
inline constexpr absl::string_view kHermesClose = "</tool_call>";
inline constexpr absl::string_view kPythonTag = "<|python_tag|>";
inline constexpr absl::string_view kMistralCalls = "[TOOL_CALLS]";
inline constexpr absl::string_view kGraniteCall = "<|tool_call|>";

// The markup that opens a call region in `format` (empty for generic).
absl::string_view RegionTrigger(ToolCallFormat format);

struct CallProgress {
  std::string name;
  std::string id;         // the model's own, when written before the arguments
  std::string arguments;  // as much as is known: compact JSON text
  bool complete = false;  // the arguments object is closed
};

struct RegionScan {
  enum class State {
    kOpen,   // more text is needed to know where the region ends
    kCalls,  // the region holds `calls` (one or more) and ends at `end`
    kText,   // the region is not a call: its first `end` bytes are text
  };
  State state = State::kOpen;
  std::vector<CallProgress> calls;  // certain so far (kOpen) or all (kCalls)
  size_t end = 0;
};

enum class RegionKind { kTagged, kLeadingJson };

// `text` starts with the region's trigger (kTagged) or '{' (kLeadingJson).
// `at_end`: no more output follows, so the region ends within `text`.
RegionScan ScanRegion(ToolCallFormat format, RegionKind kind,
                      absl::string_view text, bool at_end);

}  // namespace lumen::chat::internal
