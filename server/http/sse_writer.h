#pragma once
// Server-Sent Events as OpenAI streams them: every event is one
// "data: <json>\n\n" line (JSON has no raw newlines), an error is an event
// {"error": {...}}, and the stream ends with "data: [DONE]\n\n". Events are
// gathered and flushed as one chunk of the HTTP response, so a burst of
// output (text, finish, usage, [DONE]) costs one write. One thread at a
// time.

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "server/http/openai_error.h"

namespace lumen::server::http {

// One event's bytes: "data: " + compact JSON (invalid UTF-8 replaced) +
// "\n\n".
std::string SseEvent(const JsonOut& event);
inline constexpr absl::string_view kSseDone = "data: [DONE]\n\n";

class SseWriter {
 public:
  // `write` sends bytes to the client; false when the client is gone.
  explicit SseWriter(std::function<bool(absl::string_view)> write)
      : write_(std::move(write)) {}

  // Queues an event (null events are skipped).
  void Add(const JsonOut& event);
  // Queues "data: [DONE]".
  void AddDone();
  // Sends what is queued as one write; false when the client is gone.
  bool Flush();

 private:
  std::function<bool(absl::string_view)> write_;
  std::string pending_;
};

}  // namespace lumen::server::http
