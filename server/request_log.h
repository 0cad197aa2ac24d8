#pragma once
// RequestLog: one line per finished request (id, model, tokens in/out, TTFT,
// total time, status), and per request refused because it did not parse
// (method, status), as text or as one JSON object per line.

#include <mutex>

#include "engine/engine.h"

namespace lumen::server {

enum class LogFormat { kText, kJson };

class RequestLog : public engine::EngineObserver {
 public:
  explicit RequestLog(LogFormat format) : format_(format) {}
  void OnRequestFinished(const engine::RequestSummary& r) override;
  // One line for a request refused before any handler because its bytes did
  // not parse; `method` is its full path. Any thread.
  void OnUnparsable(const std::string& method);

 private:
  LogFormat format_;
  std::mutex mu_;
};

// Prints a server message ("lumend: ...") in the configured format.
void LogInfo(LogFormat format, const std::string& message);

}  // namespace lumen::server
