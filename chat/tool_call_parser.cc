#include "chat/tool_call_parser.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "chat/tool_call_scan.h"

namespace lumen::chat {

namespace {

using internal::kGraniteCall;
using internal::kHermesOpen;
using internal::kMistralCalls;
using internal::kPythonTag;

// Formats whose whole reply may be a bare JSON call.
bool LeadingJson(ToolCallFormat f) {
  return f == ToolCallFormat::kLlama3 || f == ToolCallFormat::kGeneric;
}

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

size_t SkipSpace(absl::string_view s, size_t pos) {
  while (pos < s.size() && IsSpace(s[pos])) ++pos;
  return pos;
}

}  // namespace

void MergeToolCall(std::vector<ToolCall>* calls, ToolCall piece) {
  for (auto it = calls->rbegin(); it != calls->rend(); ++it) {
    if (it->index == piece.index) {
      it->arguments += piece.arguments;
      return;
    }
  }
  calls->push_back(std::move(piece));
}

absl::string_view ToolCallFormatName(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kGeneric:
      return "generic";
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kQwen3CoderXml:
      return "qwen3_coder_xml";
    case ToolCallFormat::kLlama3:
      return "llama3";
    case ToolCallFormat::kMistral:
      return "mistral";
    case ToolCallFormat::kGranite:
      return "granite";
  }
  return "generic";
}

ToolCallFormat DetectToolCallFormat(absl::string_view t) {
  if (absl::StrContains(t, kHermesOpen)) {
    return absl::StrContains(t, "<function=") &&
                   absl::StrContains(t, "<parameter=")
               ? ToolCallFormat::kQwen3CoderXml
               : ToolCallFormat::kHermes;
  }
  if (absl::StrContains(t, kMistralCalls)) return ToolCallFormat::kMistral;
  if (absl::StrContains(t, kGraniteCall)) return ToolCallFormat::kGranite;
  if (absl::StrContains(t, "<|start_header_id|>ipython<|end_header_id|>") ||
      (absl::StrContains(t, "<|start_header_id|>") &&
       absl::StrContains(t, kPythonTag))) {
    return ToolCallFormat::kLlama3;
  }
  return ToolCallFormat::kGeneric;
}

void ToolCallStreamParser::EmitContent(absl::string_view text,
                                       ParsedOutput* out) {
  if (after_call_) {
    const size_t first = SkipSpace(text, 0);
    if (first == text.size()) return;  // only whitespace after a call
    text.remove_prefix(first);
    after_call_ = false;
  }
  if (text.empty()) return;
  if (SkipSpace(text, 0) < text.size()) at_start_ = false;
  out->content.append(text.data(), text.size());
}

ParsedOutput ToolCallStreamParser::Push(absl::string_view text) {
  ParsedOutput out;
  buffer_.append(text.data(), text.size());
  Scan(/*at_end=*/false, &out);
  return out;
}

ParsedOutput ToolCallStreamParser::Finish() {
  ParsedOutput out;
  Scan(/*at_end=*/true, &out);
  return out;
}

void ToolCallStreamParser::Scan(bool at_end, ParsedOutput* out) {
  const absl::string_view trigger = internal::RegionTrigger(format_);
  while (true) {
    if (region_ != Region::kNone) {
      if (!ReadRegion(at_end, out)) return;
      continue;
    }
    if (buffer_.empty()) return;
    if (at_start_ && LeadingJson(format_)) {
      size_t first = SkipSpace(buffer_, 0);
      // After a bare JSON call another may follow, separated by ';'.
      if (after_call_ && first < buffer_.size() && buffer_[first] == ';')
        first = SkipSpace(buffer_, first + 1);
      if (first == buffer_.size()) {
        if (at_end) {
          EmitContent(buffer_, out);
          buffer_.clear();
        }
        return;  // undecided: only whitespace so far
      }
      if (buffer_[first] == '{') {
        buffer_.erase(0, first);
        region_ = Region::kLeadingJson;
        continue;
      }
      at_start_ = false;
    }
    const size_t pos = trigger.empty()
                           ? absl::string_view::npos
                           : buffer_.find(trigger.data(), 0, trigger.size());
    if (pos != absl::string_view::npos) {
      EmitContent(absl::string_view(buffer_).substr(0, pos), out);
      buffer_.erase(0, pos);
      region_ = Region::kTagged;
      continue;
    }
    // Hold back a tail that may be the start of the trigger.
    size_t keep = 0;
    if (!at_end) {
      for (size_t k = std::min(trigger.size() - (trigger.empty() ? 0 : 1),
                               buffer_.size());
           k > 0; --k) {
        if (absl::EndsWith(buffer_, trigger.substr(0, k))) {
          keep = k;
          break;
        }
      }
    }
    EmitContent(absl::string_view(buffer_).substr(0, buffer_.size() - keep),
                out);
    buffer_.erase(0, buffer_.size() - keep);
    return;
  }
}

bool ToolCallStreamParser::ReadRegion(bool at_end, ParsedOutput* out) {
  using internal::RegionScan;
  if (!at_end && scanned_size_ > 0 &&
      buffer_.size() < scanned_size_ + scanned_size_ / 64) {
    return false;
  }
  scanned_size_ = buffer_.size();
  const RegionScan scan = internal::ScanRegion(
      format_,
      region_ == Region::kLeadingJson ? internal::RegionKind::kLeadingJson
                                      : internal::RegionKind::kTagged,
      buffer_, at_end);
  // What is new since the last read: calls that have begun, and what their
  // arguments gained (a longer prefix only ever extends them).
  for (size_t i = 0; i < scan.calls.size(); ++i) {
    const internal::CallProgress& c = scan.calls[i];
    const int index = next_index_ + static_cast<int>(i);
    if (i == sent_.size()) {
      out->tool_calls.push_back(ToolCall{index, c.id, c.name, c.arguments});
      sent_.push_back(c.arguments.size());
    } else if (c.arguments.size() > sent_[i]) {
      out->tool_calls.push_back(
          ToolCall{index, "", "", c.arguments.substr(sent_[i])});
      sent_[i] = c.arguments.size();
    }
  }
  if (scan.state == RegionScan::State::kOpen) return false;
  const absl::string_view taken =
      absl::string_view(buffer_).substr(0, scan.end);
  if (scan.state == RegionScan::State::kCalls) {
    for (const internal::CallProgress& c : scan.calls)
      unfinished_ = unfinished_ || !c.complete;
    next_index_ += static_cast<int>(scan.calls.size());
    after_call_ = true;
    at_start_ = region_ == Region::kLeadingJson;  // bare calls may repeat
  } else {
    // Not a call: the text, markup included, is content.
    after_call_ = false;
    EmitContent(taken, out);
    at_start_ = false;
  }
  buffer_.erase(0, scan.end);
  sent_.clear();
  scanned_size_ = 0;
  region_ = Region::kNone;
  return true;
}

ParsedOutput ParseToolCalls(ToolCallFormat format, absl::string_view text) {
  ToolCallStreamParser parser(format);
  ParsedOutput out;
  for (ParsedOutput part : {parser.Push(text), parser.Finish()}) {
    out.content += part.content;
    for (ToolCall& c : part.tool_calls) MergeToolCall(&out.tool_calls, c);
  }
  return out;
}

}  // namespace lumen::chat
