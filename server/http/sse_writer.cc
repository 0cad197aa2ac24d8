#include "server/http/sse_writer.h"

#include "absl/strings/str_cat.h"

namespace lumen::server::http {

std::string SseEvent(const JsonOut& event) {
  return absl::StrCat(
      "data: ", event.dump(-1, ' ', false, JsonOut::error_handler_t::replace),
      "\n\n");
}

void SseWriter::Add(const JsonOut& event) {
  if (event.is_null()) return;
  absl::StrAppend(&pending_, SseEvent(event));
}

void SseWriter::AddDone() { absl::StrAppend(&pending_, kSseDone); }

bool SseWriter::Flush() {
  if (pending_.empty()) return true;
  const bool ok = write_(pending_);
  pending_.clear();
  return ok;
}

}  // namespace lumen::server::http
