#include "chat/tool_call_parser.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "chat/jinja/value.h"

namespace lumen::chat {

namespace {

using Json = jinja::Json;

constexpr absl::string_view kHermesOpen = "<tool_call>";
constexpr absl::string_view kHermesClose = "</tool_call>";
constexpr absl::string_view kPythonTag = "<|python_tag|>";
constexpr absl::string_view kMistralCalls = "[TOOL_CALLS]";
constexpr absl::string_view kMistralArgs = "[ARGS]";
constexpr absl::string_view kMistralCallId = "[CALL_ID]";
constexpr absl::string_view kGraniteCall = "<|tool_call|>";

// Deeper JSON than this is not a tool call (and would make parsing and
// printing it recurse deeply).
constexpr size_t kMaxJsonDepth = 64;

// Where the JSON value at the start of some text ends.
struct JsonExtent {
  enum State { kComplete, kIncomplete, kMalformed } state = kIncomplete;
  // kComplete: just past the value; kMalformed: just past the character
  // that cannot belong to it. Either way it depends only on the text up to
  // there, so streamed and one-shot parses agree.
  size_t end = 0;
};

absl::string_view Trigger(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kHermes:
    case ToolCallFormat::kQwen3CoderXml:
      return kHermesOpen;
    case ToolCallFormat::kLlama3:
      return kPythonTag;
    case ToolCallFormat::kMistral:
      return kMistralCalls;
    case ToolCallFormat::kGranite:
      return kGraniteCall;
    case ToolCallFormat::kGeneric:
      break;
  }
  return {};
}

// Formats whose whole reply may be a bare JSON call.
bool LeadingJson(ToolCallFormat f) {
  return f == ToolCallFormat::kLlama3 || f == ToolCallFormat::kGeneric;
}

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

size_t SkipSpace(absl::string_view s, size_t pos) {
  while (pos < s.size() && IsSpace(s[pos])) ++pos;
  return pos;
}

absl::string_view TrimSpace(absl::string_view s) {
  size_t b = SkipSpace(s, 0);
  size_t e = s.size();
  while (e > b && IsSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// The extent of the JSON object or array starting at s[begin]: malformed at
// a mismatched bracket, nesting beyond kMaxJsonDepth or a start that is not
// '{' or '['.
JsonExtent JsonValueEnd(absl::string_view s, size_t begin) {
  std::string closers;
  bool in_string = false, escaped = false;
  for (size_t i = begin; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        closers.push_back(c == '{' ? '}' : ']');
        if (closers.size() > kMaxJsonDepth) {
          return {JsonExtent::kMalformed, i + 1};
        }
        break;
      case '}':
      case ']':
        if (closers.empty() || closers.back() != c) {
          return {JsonExtent::kMalformed, i + 1};
        }
        closers.pop_back();
        if (closers.empty()) return {JsonExtent::kComplete, i + 1};
        break;
      default:
        if (closers.empty()) {  // not an object or array
          return {JsonExtent::kMalformed, i + 1};
        }
    }
  }
  return {JsonExtent::kIncomplete, s.size()};
}

// Parsed JSON no deeper than kMaxJsonDepth, else nullopt.
std::optional<Json> ParseJson(absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded() || jinja::MeasureJson(j, kMaxJsonDepth).depth >
                              static_cast<int>(kMaxJsonDepth)) {
    return std::nullopt;
  }
  return j;
}

std::string Compact(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Arguments must be an object, or a string holding one.
std::optional<std::string> ArgumentsText(const Json& a) {
  if (a.is_object()) return Compact(a);
  if (a.is_string()) {
    std::optional<Json> inner = ParseJson(a.get_ref<const std::string&>());
    if (inner && inner->is_object()) return Compact(*inner);
  }
  return std::nullopt;
}

const Json* Field(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// {"name": N, "arguments"|"parameters": {...}, "id": I} or the OpenAI shape
// {"id": I, "type": "function", "function": {...}}.
std::optional<ToolCall> CallFromObject(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  if (const Json* f = Field(j, "function"); f != nullptr && f->is_object()) {
    std::optional<ToolCall> call = CallFromObject(*f);
    if (call) {
      if (const Json* id = Field(j, "id"); id != nullptr && id->is_string())
        call->id = id->get<std::string>();
    }
    return call;
  }
  const Json* name = Field(j, "name");
  if (name == nullptr || !name->is_string() ||
      name->get_ref<const std::string&>().empty()) {
    return std::nullopt;
  }
  ToolCall call;
  call.name = name->get<std::string>();
  const Json* args = Field(j, "arguments");
  if (args == nullptr) args = Field(j, "parameters");
  if (args == nullptr) {
    call.arguments = "{}";
  } else if (std::optional<std::string> text = ArgumentsText(*args)) {
    call.arguments = std::move(*text);
  } else {
    return std::nullopt;
  }
  if (const Json* id = Field(j, "id"); id != nullptr && id->is_string())
    call.id = id->get<std::string>();
  return call;
}

// A call object or a list of them; all must be calls.
std::optional<std::vector<ToolCall>> CallsFromJson(const Json& j) {
  std::vector<ToolCall> calls;
  if (j.is_array()) {
    if (j.empty()) return std::nullopt;
    for (const Json& e : j) {
      std::optional<ToolCall> c = CallFromObject(e);
      if (!c) return std::nullopt;
      calls.push_back(std::move(*c));
    }
    return calls;
  }
  std::optional<ToolCall> c = CallFromObject(j);
  if (!c) return std::nullopt;
  calls.push_back(std::move(*c));
  return calls;
}

// The generic reply shapes: {"tool_calls": [...]}, {"tool_call": {...}}, or
// a call object itself.
std::optional<std::vector<ToolCall>> GenericCalls(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  if (const Json* list = Field(j, "tool_calls"); list != nullptr) {
    if (!list->is_array()) return std::nullopt;
    return CallsFromJson(*list);
  }
  if (const Json* one = Field(j, "tool_call"); one != nullptr) {
    return CallsFromJson(*one);
  }
  return CallsFromJson(j);
}

// <function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n...</function>; a
// value that is valid JSON (a number, an object...) is taken as such,
// anything else as a string.
std::optional<ToolCall> Qwen3CoderCall(absl::string_view body) {
  constexpr absl::string_view kFunction = "<function=";
  constexpr absl::string_view kParameter = "<parameter=";
  constexpr absl::string_view kParameterEnd = "</parameter>";
  body = TrimSpace(body);
  if (!absl::StartsWith(body, kFunction)) return std::nullopt;
  const size_t name_end = body.find('>');
  if (name_end == absl::string_view::npos) return std::nullopt;
  ToolCall call;
  call.name = std::string(
      TrimSpace(body.substr(kFunction.size(), name_end - kFunction.size())));
  if (call.name.empty()) return std::nullopt;
  absl::string_view rest = body.substr(name_end + 1);
  Json args = Json::object();
  while (true) {
    rest = rest.substr(SkipSpace(rest, 0));
    if (absl::StartsWith(rest, "</function>")) break;
    if (!absl::StartsWith(rest, kParameter)) return std::nullopt;
    const size_t key_end = rest.find('>');
    const size_t value_end = rest.find(kParameterEnd);
    if (key_end == absl::string_view::npos ||
        value_end == absl::string_view::npos || value_end < key_end) {
      return std::nullopt;
    }
    const std::string key(
        TrimSpace(rest.substr(kParameter.size(), key_end - kParameter.size())));
    absl::string_view value = rest.substr(key_end + 1, value_end - key_end - 1);
    if (absl::StartsWith(value, "\n")) value.remove_prefix(1);
    if (absl::EndsWith(value, "\n")) value.remove_suffix(1);
    std::optional<Json> parsed = ParseJson(value);
    args[key] = parsed ? *parsed : Json(std::string(value));
    rest = rest.substr(value_end + kParameterEnd.size());
  }
  call.arguments = Compact(args);
  return call;
}

}  // namespace

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
  const absl::string_view trigger = Trigger(format_);
  while (true) {
    if (region_ != Region::kNone) {
      if (!CloseRegion(at_end, out)) return;
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

bool ToolCallStreamParser::CloseRegion(bool at_end, ParsedOutput* out) {
  const absl::string_view b = buffer_;
  // Calls found, and how much of the buffer they took; nullopt: not calls.
  std::optional<std::vector<ToolCall>> calls;
  size_t consumed = 0;
  bool need_more = false;

  auto json_at = [&](size_t start) -> std::optional<Json> {
    // The JSON object or array at `start` (after spaces).
    const size_t begin = SkipSpace(b, start);
    if (begin == b.size()) {
      need_more = true;
      return std::nullopt;
    }
    const JsonExtent extent = JsonValueEnd(b, begin);
    if (extent.state == JsonExtent::kIncomplete) {
      need_more = true;
      return std::nullopt;
    }
    consumed = extent.end;
    if (extent.state == JsonExtent::kMalformed) return std::nullopt;
    return ParseJson(b.substr(begin, extent.end - begin));
  };

  if (region_ == Region::kLeadingJson) {
    std::optional<Json> j = json_at(0);
    if (j) {
      calls = format_ == ToolCallFormat::kGeneric ? GenericCalls(*j)
                                                  : CallsFromJson(*j);
      if (calls && format_ == ToolCallFormat::kLlama3 && j->is_array())
        calls.reset();  // Llama writes one object per call
    }
  } else if (format_ == ToolCallFormat::kHermes ||
             format_ == ToolCallFormat::kQwen3CoderXml) {
    const size_t body = kHermesOpen.size();
    size_t close = b.find(kHermesClose.data(), body, kHermesClose.size());
    absl::string_view inner;
    if (close != absl::string_view::npos) {
      inner = b.substr(body, close - body);
      consumed = close + kHermesClose.size();
    } else if (at_end) {
      inner = b.substr(body);  // lenient: a call cut at the end of output
      consumed = b.size();
    } else {
      need_more = true;
    }
    if (!need_more) {
      if (format_ == ToolCallFormat::kQwen3CoderXml) {
        if (std::optional<ToolCall> c = Qwen3CoderCall(inner)) {
          calls = std::vector<ToolCall>{std::move(*c)};
        }
      } else if (std::optional<Json> j = ParseJson(TrimSpace(inner))) {
        calls = CallsFromJson(*j);
      }
    }
  } else if (format_ == ToolCallFormat::kMistral) {
    const size_t after = SkipSpace(b, kMistralCalls.size());
    if (after < b.size() && (b[after] == '[' || b[after] == '{')) {
      if (std::optional<Json> j = json_at(after)) calls = CallsFromJson(*j);
    } else if (after < b.size()) {
      // v11: [TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...}
      const size_t args =
          b.find(kMistralArgs.data(), after, kMistralArgs.size());
      if (args == absl::string_view::npos) {
        need_more = true;
      } else {
        absl::string_view head = b.substr(after, args - after);
        std::string id;
        if (const size_t id_pos = head.find(kMistralCallId);
            id_pos != absl::string_view::npos) {
          id = std::string(
              TrimSpace(head.substr(id_pos + kMistralCallId.size())));
          head = head.substr(0, id_pos);
        }
        const std::string name(TrimSpace(head));
        std::optional<Json> j = json_at(args + kMistralArgs.size());
        if (j && !name.empty()) {
          if (std::optional<std::string> text = ArgumentsText(*j)) {
            calls = std::vector<ToolCall>{ToolCall{0, id, name, *text}};
          }
        }
      }
    } else {
      need_more = true;
    }
  } else if (format_ == ToolCallFormat::kGranite ||
             format_ == ToolCallFormat::kLlama3) {
    const size_t start =
        (format_ == ToolCallFormat::kGranite ? kGraniteCall : kPythonTag)
            .size();
    if (std::optional<Json> j = json_at(start)) calls = CallsFromJson(*j);
  }

  if (need_more && !at_end) return false;
  // Unfinished at the end: content. (The region is never empty: it starts
  // with its trigger or '{'.)
  if (need_more || consumed == 0) consumed = b.size();
  if (calls) {
    for (ToolCall& c : *calls) {
      c.index = next_index_++;
      out->tool_calls.push_back(std::move(c));
    }
    buffer_.erase(0, consumed);
    after_call_ = true;
    at_start_ = region_ == Region::kLeadingJson;  // bare calls may repeat
  } else {
    // Not a call: the text, markup included, is content.
    after_call_ = false;
    EmitContent(b.substr(0, consumed), out);
    buffer_.erase(0, consumed);
    at_start_ = false;
  }
  region_ = Region::kNone;
  return true;
}

ParsedOutput ParseToolCalls(ToolCallFormat format, absl::string_view text) {
  ToolCallStreamParser parser(format);
  ParsedOutput out = parser.Push(text);
  ParsedOutput rest = parser.Finish();
  out.content += rest.content;
  for (ToolCall& c : rest.tool_calls) out.tool_calls.push_back(std::move(c));
  return out;
}

}  // namespace lumen::chat
