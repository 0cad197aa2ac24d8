#pragma once
// JSON text exactly as Python's json.dumps writes it, which is what Hugging
// Face's `tojson` filter produces: keys in their given order (or sorted),
// separators ", " and ": " (",", ": " with an indent), floats as repr(),
// non-ASCII characters raw unless ensure_ascii. Pure and thread-safe.

#include <optional>
#include <string>

#include "chat/jinja/value.h"

namespace lumen::chat::jinja {

struct JsonDumpOptions {
  // Python's indent: nullopt is one line; a string (for an int N, N spaces)
  // puts every item on its own line.
  std::optional<std::string> indent;
  std::string item_separator = ", ";  // Python switches to "," with indent
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};

// Appends json.dumps(json) to `out`. The recursion is as deep as `json`,
// which callers keep shallow (see MeasureJson).
void DumpPythonJson(const Json& json, const JsonDumpOptions& options,
                    std::string* out);

}  // namespace lumen::chat::jinja
