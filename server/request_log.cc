#include "server/request_log.h"

#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/json_writer.h"
#include "server/status_util.h"

namespace lumen::server {

namespace {
std::string Now() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                          absl::UTCTimeZone());
}

// Opens a JSON log line: its time, level info and message; the caller adds
// its fields and closes the object.
JsonWriter& BeginJsonLine(JsonWriter& w, const std::string& message) {
  return w.BeginObject()
      .Key("time")
      .String(Now())
      .Key("level")
      .String("info")
      .Key("msg")
      .String(message);
}
}  // namespace

void LogInfo(LogFormat format, const std::string& message) {
  if (format == LogFormat::kJson) {
    JsonWriter w;
    BeginJsonLine(w, message).EndObject();
    std::fprintf(stderr, "%s\n", w.str().c_str());
  } else {
    std::fprintf(stderr, "%s lumend: %s\n", Now().c_str(), message.c_str());
  }
}

void RequestLog::OnRequestFinished(const engine::RequestSummary& r) {
  std::string line;
  if (format_ == LogFormat::kJson) {
    JsonWriter w;
    BeginJsonLine(w, "request finished")
        .Key("request_id")
        .String(absl::StrFormat("req-%d", r.id))
        .Key("model")
        .String(r.model)
        .Key("api")
        .String(r.api)
        .Key("prompt_tokens")
        .Int(r.usage.prompt_tokens)
        .Key("completion_tokens")
        .Int(r.usage.completion_tokens)
        .Key("cached_prompt_tokens")
        .Int(r.usage.cached_prompt_tokens)
        .Key("ttft_seconds")
        .Double(r.timings.time_to_first_token_seconds)
        .Key("total_seconds")
        .Double(r.timings.total_seconds)
        .Key("finish_reason")
        .String(r.finish_reason)
        .Key("status")
        .String(CodeName(r.code))
        .EndObject();
    line = w.str();
  } else {
    line = absl::StrFormat(
        "%s lumend: request req-%d api=%s model=%s tokens_in=%d (cached %d) "
        "tokens_out=%d "
        "ttft=%.1fms total=%.1fms finish=%s status=%s",
        Now(), r.id, r.api, r.model, r.usage.prompt_tokens,
        r.usage.cached_prompt_tokens, r.usage.completion_tokens,
        1e3 * r.timings.time_to_first_token_seconds,
        1e3 * r.timings.total_seconds, r.finish_reason, CodeName(r.code));
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::fprintf(stderr, "%s\n", line.c_str());
}

void RequestLog::OnUnparsable(const std::string& method) {
  std::string line;
  if (format_ == LogFormat::kJson) {
    JsonWriter w;
    BeginJsonLine(w, "request refused")
        .Key("method")
        .String(method)
        .Key("api")
        .String("grpc")
        .Key("reason")
        .String("unparsable")
        .Key("status")
        .String(CodeName(absl::StatusCode::kInvalidArgument))
        .EndObject();
    line = w.str();
  } else {
    line = absl::StrFormat(
        "%s lumend: request refused api=grpc method=%s reason=unparsable "
        "status=%s",
        Now(), method, CodeName(absl::StatusCode::kInvalidArgument));
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace lumen::server
