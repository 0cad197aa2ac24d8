#include "chat/tool_call_scan.h"

#include <cctype>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "chat/jinja/value.h"

namespace lumen::chat::internal {

namespace {

using Json = jinja::Json;

constexpr absl::string_view kMistralArgs = "[ARGS]";
constexpr absl::string_view kMistralCallId = "[CALL_ID]";
constexpr absl::string_view kFunctionOpen = "<function=";
constexpr absl::string_view kFunctionClose = "</function>";
constexpr absl::string_view kParameterOpen = "<parameter=";
constexpr absl::string_view kParameterClose = "</parameter>";

// Deeper JSON than this is not a tool call (and would make parsing and
// printing it recurse deeply).
constexpr size_t kMaxJsonDepth = 64;

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

// Where the JSON value at some position ends.
struct Extent {
  enum State { kComplete, kIncomplete, kMalformed } state = kIncomplete;
  // kComplete: just past the value; kMalformed: just past the character
  // that cannot belong to it. Either way it depends only on the text up to
  // there, so every prefix that reaches it agrees.
  size_t end = 0;
};

// An object or array: malformed at a mismatched bracket, nesting beyond
// `max_depth` or a start that is not '{' or '['.
Extent ContainerEnd(absl::string_view s, size_t begin,
                    size_t max_depth = kMaxJsonDepth) {
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
        if (closers.size() > max_depth) {
          return {Extent::kMalformed, i + 1};
        }
        break;
      case '}':
      case ']':
        if (closers.empty() || closers.back() != c) {
          return {Extent::kMalformed, i + 1};
        }
        closers.pop_back();
        if (closers.empty()) return {Extent::kComplete, i + 1};
        break;
      default:
        if (closers.empty()) return {Extent::kMalformed, i + 1};
    }
  }
  return {Extent::kIncomplete, s.size()};
}

Extent StringEnd(absl::string_view s, size_t begin) {
  bool escaped = false;
  for (size_t i = begin + 1; i < s.size(); ++i) {
    if (escaped) {
      escaped = false;
    } else if (s[i] == '\\') {
      escaped = true;
    } else if (s[i] == '"') {
      return {Extent::kComplete, i + 1};
    }
  }
  return {Extent::kIncomplete, s.size()};
}

// Any JSON value; a number or literal ends at the first character that
// cannot continue it (whether it is a valid one is the parser's to say).
Extent ValueEnd(absl::string_view s, size_t begin) {
  if (s[begin] == '{' || s[begin] == '[') return ContainerEnd(s, begin);
  if (s[begin] == '"') return StringEnd(s, begin);
  size_t i = begin;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) ||
                          s[i] == '+' || s[i] == '-' || s[i] == '.')) {
    ++i;
  }
  if (i == begin) return {Extent::kMalformed, begin + 1};
  if (i == s.size()) return {Extent::kIncomplete, i};
  return {Extent::kComplete, i};
}

// The JSON text without the spaces outside its strings.
std::string Minify(absl::string_view json) {
  std::string out;
  out.reserve(json.size());
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (IsSpace(c)) {
      continue;
    }
    out += c;
  }
  return out;
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

// A complete JSON string token's value ("" when it does not parse).
std::string StringValue(absl::string_view token) {
  std::optional<Json> j = ParseJson(token);
  return j && j->is_string() ? j->get<std::string>() : std::string();
}

// ---- Whole call objects: the shapes a finished JSON value may take.

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
std::optional<CallProgress> CallFromObject(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  if (const Json* f = Field(j, "function"); f != nullptr && f->is_object()) {
    std::optional<CallProgress> call = CallFromObject(*f);
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
  CallProgress call;
  call.complete = true;
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

using Calls = std::vector<CallProgress>;

// A call object or a list of them; all must be calls.
std::optional<Calls> CallsFromJson(const Json& j) {
  Calls calls;
  if (j.is_array()) {
    if (j.empty()) return std::nullopt;
    for (const Json& e : j) {
      std::optional<CallProgress> c = CallFromObject(e);
      if (!c) return std::nullopt;
      calls.push_back(std::move(*c));
    }
    return calls;
  }
  std::optional<CallProgress> c = CallFromObject(j);
  if (!c) return std::nullopt;
  calls.push_back(std::move(*c));
  return calls;
}

// The generic reply shapes: {"tool_calls": [...]}, {"tool_call": {...}}, or
// a call object itself.
std::optional<Calls> GenericCalls(const Json& j) {
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

using WholeRule = std::optional<Calls> (*)(const Json&);

// ---- Prefix scanning.

// How far a scan got. kDone: calls were found and the JSON part ends at
// `end`; kNotCalls: no call, the JSON part (text) ends at `end`.
struct Scanned {
  enum Step { kOpen, kDone, kNotCalls } step = kOpen;
  size_t end = 0;
  bool streamed = false;  // a call was certain before its JSON was complete
  // The JSON broke (a mismatched bracket, too deep): kDone ends just before
  // the character that broke it, kNotCalls just past it.
  bool broken = false;
};

// The call object at s[begin] == '{', inside `nesting` containers of the
// region's JSON, whose depth is bounded as a whole (so the arguments break
// first, never the object around arguments already sent). It streams when
// its name (and maybe id) come before an arguments object; otherwise it is
// judged whole, by `whole`, once its extent is known.
Scanned ScanCallObject(absl::string_view s, size_t begin, WholeRule whole,
                       Calls* calls, size_t nesting = 0,
                       bool in_function = false) {
  const Extent object = ContainerEnd(s, begin, kMaxJsonDepth - nesting);
  auto judge_whole = [&]() -> Scanned {
    if (object.state == Extent::kIncomplete) return {Scanned::kOpen};
    if (object.state == Extent::kComplete) {
      if (std::optional<Json> j =
              ParseJson(s.substr(begin, object.end - begin))) {
        if (std::optional<Calls> found = whole(*j)) {
          for (CallProgress& c : *found) calls->push_back(std::move(c));
          return {Scanned::kDone, object.end};
        }
      }
    }
    return {Scanned::kNotCalls, object.end, false,
            object.state == Extent::kMalformed};
  };
  // After a streamed call's arguments: the rest of the object.
  auto rest_of_object = [&]() -> Scanned {
    if (object.state == Extent::kIncomplete) return {Scanned::kOpen, 0, true};
    if (object.state == Extent::kComplete) {
      return {Scanned::kDone, object.end, true};
    }
    return {Scanned::kDone, object.end - 1, true, true};
  };
  std::string name, id;
  size_t p = begin + 1;
  while (true) {
    p = SkipSpace(s, p);
    if (p == s.size() || s[p] != '"') return judge_whole();
    const Extent key_extent = StringEnd(s, p);
    if (key_extent.state != Extent::kComplete) return judge_whole();
    const std::string key = StringValue(s.substr(p, key_extent.end - p));
    p = SkipSpace(s, key_extent.end);
    if (p == s.size() || s[p] != ':') return judge_whole();
    p = SkipSpace(s, p + 1);
    if (p == s.size()) return judge_whole();
    if ((key == "arguments" || key == "parameters") && s[p] == '{' &&
        !name.empty()) {
      const Extent args = ContainerEnd(s, p, kMaxJsonDepth - nesting - 1);
      const size_t args_end =
          args.state == Extent::kMalformed ? args.end - 1 : args.end;
      // Finished only when its brackets close on valid JSON.
      calls->push_back(
          CallProgress{name, id, Minify(s.substr(p, args_end - p)),
                       args.state == Extent::kComplete &&
                           ParseJson(s.substr(p, args_end - p)).has_value()});
      if (args.state == Extent::kIncomplete) return {Scanned::kOpen, 0, true};
      if (args.state == Extent::kMalformed) {
        return {Scanned::kDone, args_end, true, true};
      }
      return rest_of_object();
    }
    if (key == "function" && s[p] == '{' && !in_function) {
      // OpenAI's shape: the call is the inner object. Unless it streams,
      // the outer object is judged whole (its id may follow).
      Calls inner;
      const Scanned nested =
          ScanCallObject(s, p, CallsFromJson, &inner, nesting + 1, true);
      if (!nested.streamed) return judge_whole();
      if (inner[0].id.empty()) inner[0].id = id;
      calls->push_back(std::move(inner[0]));
      if (nested.step == Scanned::kOpen || nested.broken) return nested;
      return rest_of_object();
    }
    const Extent value = ValueEnd(s, p);
    if (value.state != Extent::kComplete) return judge_whole();
    if (s[p] == '"' && (key == "name" || key == "id")) {
      (key == "name" ? name : id) = StringValue(s.substr(p, value.end - p));
    }
    p = SkipSpace(s, value.end);
    if (p == s.size() || s[p] != ',') return judge_whole();
    ++p;
  }
}

// A list of call objects at s[begin] == '['. Once one call is certain the
// rest is read leniently: an element that is not a call is skipped, and
// text that breaks the list ends the region just before it.
Scanned ScanCallList(absl::string_view s, size_t begin, Calls* calls,
                     size_t nesting = 0) {
  const size_t before = calls->size();
  auto as_text = [&]() -> Scanned {  // decided once the list's extent is
    const Extent list = ContainerEnd(s, begin, kMaxJsonDepth - nesting);
    if (list.state == Extent::kIncomplete) return {Scanned::kOpen};
    return {Scanned::kNotCalls, list.end, false,
            list.state == Extent::kMalformed};
  };
  size_t p = begin + 1;
  while (true) {
    p = SkipSpace(s, p);
    if (p == s.size()) return {Scanned::kOpen};
    const bool committed = calls->size() > before;
    if (s[p] != '{') {
      return committed ? Scanned{Scanned::kDone, p, false, true} : as_text();
    }
    const Scanned one = ScanCallObject(s, p, CallsFromJson, calls, nesting + 1);
    if (one.step == Scanned::kOpen) return one;
    if (calls->size() == before) return as_text();
    if (one.broken) {
      return {Scanned::kDone,
              one.step == Scanned::kNotCalls ? one.end - 1 : one.end, false,
              true};
    }
    p = SkipSpace(s, one.end);
    if (p == s.size()) return {Scanned::kOpen};
    if (s[p] == ',') {
      ++p;
      continue;
    }
    if (s[p] == ']') return {Scanned::kDone, p + 1};
    return {Scanned::kDone, p, false, true};
  }
}

// A call object or a list of them at the first non-space from `begin`.
Scanned ScanCallsJson(absl::string_view s, size_t begin, Calls* calls) {
  const size_t p = SkipSpace(s, begin);
  if (p == s.size()) return {Scanned::kOpen};
  if (s[p] == '[') return ScanCallList(s, p, calls);
  if (s[p] == '{') return ScanCallObject(s, p, CallsFromJson, calls);
  return {Scanned::kNotCalls, p + 1};
}

// A generic reply at s[0] == '{': {"tool_calls": [...]}, {"tool_call":
// {...}} (the first member), or a call object.
Scanned ScanGenericReply(absl::string_view s, Calls* calls) {
  size_t p = SkipSpace(s, 1);
  if (p == s.size()) return {Scanned::kOpen};
  Scanned inner;
  if (s[p] == '"') {
    const Extent key_extent = StringEnd(s, p);
    if (key_extent.state != Extent::kComplete) {
      return ScanCallObject(s, 0, GenericCalls, calls);
    }
    const std::string key = StringValue(s.substr(p, key_extent.end - p));
    p = SkipSpace(s, key_extent.end);
    if (p < s.size() && s[p] == ':') p = SkipSpace(s, p + 1);
    if (p == s.size()) return ScanCallObject(s, 0, GenericCalls, calls);
    if (key == "tool_calls" && s[p] == '[') {
      inner = ScanCallList(s, p, calls, 1);
    } else if (key == "tool_call" && s[p] == '{') {
      inner = ScanCallObject(s, p, CallsFromJson, calls, 1);
    } else {
      return ScanCallObject(s, 0, GenericCalls, calls);
    }
  } else {
    return ScanCallObject(s, 0, GenericCalls, calls);
  }
  const Extent object = ContainerEnd(s, 0);
  if (inner.step == Scanned::kNotCalls || calls->empty()) {
    if (object.state == Extent::kIncomplete) return {Scanned::kOpen};
    return {Scanned::kNotCalls, object.end};
  }
  if (inner.step == Scanned::kOpen || inner.broken) return inner;
  if (object.state == Extent::kIncomplete) return {Scanned::kOpen};
  if (object.state == Extent::kComplete) return {Scanned::kDone, object.end};
  return {Scanned::kDone, object.end - 1, false, true};
}

// Mistral v11: NAME[CALL_ID]ID[ARGS]{...} (the id is optional) after the
// trigger.
Scanned ScanMistralV11(absl::string_view s, size_t begin, Calls* calls) {
  const size_t args = s.find(kMistralArgs, begin);
  if (args == absl::string_view::npos) return {Scanned::kOpen};
  absl::string_view head = s.substr(begin, args - begin);
  std::string id;
  if (const size_t id_pos = head.find(kMistralCallId);
      id_pos != absl::string_view::npos) {
    id = std::string(TrimSpace(head.substr(id_pos + kMistralCallId.size())));
    head = head.substr(0, id_pos);
  }
  const std::string name(TrimSpace(head));
  const size_t p = SkipSpace(s, args + kMistralArgs.size());
  if (p == s.size()) return {Scanned::kOpen};
  const Extent object = ContainerEnd(s, p);
  if (s[p] != '{' || name.empty()) {
    if (object.state == Extent::kIncomplete) return {Scanned::kOpen};
    return {Scanned::kNotCalls, object.end};
  }
  const size_t end =
      object.state == Extent::kMalformed ? object.end - 1 : object.end;
  calls->push_back(
      CallProgress{name, id, Minify(s.substr(p, end - p)),
                   object.state == Extent::kComplete &&
                       ParseJson(s.substr(p, end - p)).has_value()});
  if (object.state == Extent::kIncomplete) return {Scanned::kOpen};
  return {Scanned::kDone, end};
}

// Qwen3-Coder inside <tool_call>: <function=NAME> then <parameter=P>\nVALUE
// \n</parameter> per argument, then </function>. A value that is valid
// JSON (a number, an object...) is taken as such, anything else as a
// string; each parameter joins the arguments once its close tag is seen.
Scanned ScanQwen3CoderCall(absl::string_view s, size_t begin, Calls* calls) {
  size_t p = SkipSpace(s, begin);
  const absl::string_view rest = s.substr(p);
  if (!absl::StartsWith(rest, kFunctionOpen)) {
    return absl::StartsWith(kFunctionOpen, rest) ? Scanned{Scanned::kOpen}
                                                 : Scanned{Scanned::kNotCalls};
  }
  const size_t name_end = s.find('>', p);
  if (name_end == absl::string_view::npos) return {Scanned::kOpen};
  const size_t name_begin = p + kFunctionOpen.size();
  CallProgress call;
  call.name =
      std::string(TrimSpace(s.substr(name_begin, name_end - name_begin)));
  if (call.name.empty()) return {Scanned::kNotCalls};
  p = name_end + 1;
  Scanned result{Scanned::kOpen};
  int parameters = 0;
  while (true) {
    p = SkipSpace(s, p);
    const absl::string_view tail = s.substr(p);
    if (absl::StartsWith(tail, kFunctionClose)) {
      call.arguments += parameters == 0 ? "{}" : "}";
      call.complete = true;
      result = {Scanned::kDone, p + kFunctionClose.size()};
      break;
    }
    if (!absl::StartsWith(tail, kParameterOpen)) {
      if (!absl::StartsWith(kFunctionClose, tail) &&
          !absl::StartsWith(kParameterOpen, tail)) {
        result = {Scanned::kDone, p};  // malformed: the call ends here
      }
      break;
    }
    const size_t key_end = s.find('>', p);
    if (key_end == absl::string_view::npos) break;
    const size_t value_end = s.find(kParameterClose, key_end);
    if (value_end == absl::string_view::npos) break;
    const size_t key_begin = p + kParameterOpen.size();
    const std::string key(TrimSpace(s.substr(key_begin, key_end - key_begin)));
    absl::string_view value = s.substr(key_end + 1, value_end - key_end - 1);
    if (absl::StartsWith(value, "\n")) value.remove_prefix(1);
    if (absl::EndsWith(value, "\n")) value.remove_suffix(1);
    std::optional<Json> parsed = ParseJson(value);
    absl::StrAppend(&call.arguments, parameters == 0 ? "{" : ",",
                    Compact(Json(key)), ":",
                    Compact(parsed ? *parsed : Json(std::string(value))));
    ++parameters;
    p = value_end + kParameterClose.size();
  }
  calls->push_back(std::move(call));
  return result;
}

// The region of a Hermes or Qwen3-Coder call: <tool_call> BODY </tool_call>.
// The body is read up to the first close tag (held back while the text may
// end in the start of one); an unclosed region runs to the end of output.
RegionScan ScanTagged(ToolCallFormat format, absl::string_view s, bool at_end) {
  RegionScan r;
  const size_t close = s.find(kHermesClose, kHermesOpen.size());
  size_t body_end = s.size();
  if (close != absl::string_view::npos) {
    body_end = close;
  } else if (!at_end) {
    for (size_t k = std::min(kHermesClose.size() - 1, s.size()); k > 0; --k) {
      if (absl::EndsWith(s, kHermesClose.substr(0, k))) {
        body_end = s.size() - k;
        break;
      }
    }
  }
  const absl::string_view body = s.substr(0, body_end);
  const Scanned scanned =
      format == ToolCallFormat::kQwen3CoderXml
          ? ScanQwen3CoderCall(body, kHermesOpen.size(), &r.calls)
          : ScanCallsJson(body, kHermesOpen.size(), &r.calls);
  const bool body_final = close != absl::string_view::npos || at_end;
  if (scanned.step == Scanned::kOpen && !body_final) return r;  // kOpen
  // Whatever the body holds, the region runs through its close tag. Output
  // that ends without one: text after a finished call is content.
  if (close == absl::string_view::npos && !at_end) return r;
  r.end =
      close != absl::string_view::npos ? close + kHermesClose.size() : s.size();
  if (close == absl::string_view::npos && scanned.step == Scanned::kDone &&
      !scanned.broken && !r.calls.empty() && r.calls.back().complete) {
    r.end = scanned.end;
  }
  r.state =
      r.calls.empty() ? RegionScan::State::kText : RegionScan::State::kCalls;
  return r;
}

}  // namespace

absl::string_view RegionTrigger(ToolCallFormat f) {
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

RegionScan ScanRegion(ToolCallFormat format, RegionKind kind,
                      absl::string_view s, bool at_end) {
  if (kind == RegionKind::kTagged &&
      (format == ToolCallFormat::kHermes ||
       format == ToolCallFormat::kQwen3CoderXml)) {
    return ScanTagged(format, s, at_end);
  }
  RegionScan r;
  Scanned scanned;
  if (kind == RegionKind::kLeadingJson) {
    scanned = format == ToolCallFormat::kGeneric
                  ? ScanGenericReply(s, &r.calls)
                  : ScanCallObject(s, 0, CallsFromJson, &r.calls);
  } else if (format == ToolCallFormat::kMistral) {
    const size_t after = SkipSpace(s, kMistralCalls.size());
    if (after < s.size() && s[after] != '[' && s[after] != '{') {
      scanned = ScanMistralV11(s, after, &r.calls);
    } else {
      scanned = ScanCallsJson(s, kMistralCalls.size(), &r.calls);
    }
  } else {  // Granite, or Llama after <|python_tag|>
    scanned = ScanCallsJson(s, RegionTrigger(format).size(), &r.calls);
  }
  switch (scanned.step) {
    case Scanned::kOpen:
      if (!at_end) return r;
      // Cut by the end of output: a call that has begun stays a call.
      r.end = s.size();
      r.state = r.calls.empty() ? RegionScan::State::kText
                                : RegionScan::State::kCalls;
      return r;
    case Scanned::kDone:
      r.end = scanned.end;
      r.state = RegionScan::State::kCalls;
      return r;
    case Scanned::kNotCalls:
      r.end = scanned.end;
      r.state = RegionScan::State::kText;
      return r;
  }
  return r;
}

}  // namespace lumen::chat::internal
