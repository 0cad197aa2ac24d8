// Methods of strings, dicts and loop objects that templates may call, and
// the global functions (range, namespace, raise_exception, strftime_now,
// dict).

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "chat/jinja/builtin_support.h"
#include "chat/jinja/builtins.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja {

namespace {

constexpr absl::string_view kRaisedPayload = "lumen.chat.jinja/raise_exception";

struct MethodEntry {
  absl::string_view name;
  Method method;
};

constexpr MethodEntry kStringMethods[] = {
    {"strip", Method::kStrip},           {"lstrip", Method::kLstrip},
    {"rstrip", Method::kRstrip},         {"split", Method::kSplit},
    {"startswith", Method::kStartswith}, {"endswith", Method::kEndswith},
    {"replace", Method::kReplace},       {"lower", Method::kLower},
    {"upper", Method::kUpper},           {"title", Method::kTitle},
    {"capitalize", Method::kCapitalize}, {"join", Method::kJoin},
};

constexpr MethodEntry kDictMethods[] = {
    {"get", Method::kGet},
    {"items", Method::kItems},
    {"keys", Method::kKeys},
    {"values", Method::kValues},
};

// startswith/endswith take a string or a tuple (list) of strings.
absl::StatusOr<bool> AffixMatch(const std::string& s, const CallArgs& args,
                                bool prefix) {
  const absl::string_view name = prefix ? "startswith" : "endswith";
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"affix"}, name));
  if (!a[0]) {
    return absl::InvalidArgumentError(absl::StrCat(name, " needs an argument"));
  }
  auto matches = [&](absl::string_view affix) {
    if (affix.size() > s.size()) return false;
    return prefix ? absl::StartsWith(s, affix) : absl::EndsWith(s, affix);
  };
  if (a[0]->is_string()) return matches(a[0]->str());
  if (a[0]->is_list()) {
    for (const Json& e : a[0]->json()) {
      if (!e.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": tuple items must be strings"));
      }
      if (matches(e.get_ref<const std::string&>())) return true;
    }
    return false;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      name, " first arg must be str or a tuple of str, not ", TypeName(*a[0])));
}

absl::StatusOr<Value> CallStringMethod(Method method, const std::string& s,
                                       const CallArgs& args,
                                       BuiltinContext& ctx) {
  switch (method) {
    case Method::kStrip:
    case Method::kLstrip:
    case Method::kRstrip: {
      ASSIGN_OR_RETURN(auto a, BindArgs(args, {"chars"}, "strip"));
      std::optional<std::string> chars;
      if (a[0] && !a[0]->is_none()) {
        ASSIGN_OR_RETURN(chars, StringArg(a[0], "strip chars", ""));
      }
      return NewString(std::string(PyStrip(s, chars, method != Method::kRstrip,
                                           method != Method::kLstrip)),
                       ctx);
    }
    case Method::kSplit: {
      ASSIGN_OR_RETURN(auto a, BindArgs(args, {"sep", "maxsplit"}, "split"));
      std::optional<std::string> sep;
      if (a[0] && !a[0]->is_none()) {
        ASSIGN_OR_RETURN(sep, StringArg(a[0], "split separator", ""));
        if (sep->empty()) return absl::InvalidArgumentError("empty separator");
      }
      ASSIGN_OR_RETURN(int64_t maxsplit, IntArg(a[1], "split maxsplit", -1));
      Json parts = Json::array();
      for (absl::string_view part : PySplit(s, sep, maxsplit))
        parts.push_back(std::string(part));
      RETURN_IF_ERROR(CheckNewValue(parts, ctx));
      return Value::FromJson(std::move(parts));
    }
    case Method::kStartswith:
    case Method::kEndswith: {
      ASSIGN_OR_RETURN(bool match,
                       AffixMatch(s, args, method == Method::kStartswith));
      return Value::Bool(match);
    }
    case Method::kReplace: {
      ASSIGN_OR_RETURN(auto a,
                       BindArgs(args, {"old", "new", "count"}, "replace"));
      if (!a[0] || !a[1] || !a[0]->is_string() || !a[1]->is_string()) {
        return absl::InvalidArgumentError("replace needs two strings");
      }
      ASSIGN_OR_RETURN(int64_t count, IntArg(a[2], "replace count", -1));
      return ReplaceBounded(s, a[0]->str(), a[1]->str(), count, ctx);
    }
    case Method::kLower:
    case Method::kUpper:
    case Method::kTitle:
    case Method::kCapitalize: {
      if (!args.positional.empty() || !args.keyword.empty()) {
        return absl::InvalidArgumentError("the method takes no arguments");
      }
      return NewString(method == Method::kLower   ? PyLower(s)
                       : method == Method::kUpper ? PyUpper(s)
                       : method == Method::kTitle ? PyTitle(s)
                                                  : PyCapitalize(s),
                       ctx);
    }
    case Method::kJoin: {
      ASSIGN_OR_RETURN(auto a, BindArgs(args, {"iterable"}, "join"));
      if (!a[0]) return absl::InvalidArgumentError("join needs an iterable");
      ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(*a[0], "join"));
      std::string out;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].is_string()) {
          return absl::InvalidArgumentError(
              absl::StrCat("join: sequence item ", i, ": expected str, got ",
                           TypeName(items[i])));
        }
        if (i > 0) out += s;
        out += items[i].str();
        if (static_cast<int64_t>(out.size()) >
            ctx.options().limits.max_output_bytes) {
          return absl::InvalidArgumentError("join result too long");
        }
      }
      return NewString(std::move(out), ctx);
    }
    default:
      return absl::InternalError("not a string method");
  }
}

absl::StatusOr<Value> CallDictMethod(Method method, const Value& dict,
                                     const CallArgs& args,
                                     BuiltinContext& ctx) {
  if (method == Method::kGet) {
    ASSIGN_OR_RETURN(auto a, BindArgs(args, {"key", "default"}, "get"));
    if (!a[0]) return absl::InvalidArgumentError("get needs a key");
    if (a[0]->is_string()) {
      auto it = dict.json().find(a[0]->str());
      if (it != dict.json().end()) return dict.Child(*it);
    }
    return a[1] ? *a[1] : Value::None();
  }
  if (!args.positional.empty() || !args.keyword.empty()) {
    return absl::InvalidArgumentError("the method takes no arguments");
  }
  Json out = Json::array();
  for (auto it = dict.json().begin(); it != dict.json().end(); ++it) {
    if (method == Method::kItems) {
      out.push_back(Json::array({it.key(), it.value()}));
    } else if (method == Method::kKeys) {
      out.push_back(it.key());
    } else {
      out.push_back(it.value());
    }
  }
  RETURN_IF_ERROR(CheckNewValue(out, ctx));
  return Value::FromJson(std::move(out));
}

absl::StatusOr<Value> Range(const CallArgs& args, BuiltinContext& ctx) {
  if (!args.keyword.empty() || args.positional.empty() ||
      args.positional.size() > 3) {
    return absl::InvalidArgumentError("range takes 1 to 3 integer arguments");
  }
  int64_t values[3];
  for (size_t i = 0; i < args.positional.size(); ++i) {
    ASSIGN_OR_RETURN(values[i],
                     IntArg(args.positional[i], "range argument", 0));
  }
  int64_t start = 0, stop, step = 1;
  if (args.positional.size() == 1) {
    stop = values[0];
  } else {
    start = values[0];
    stop = values[1];
    if (args.positional.size() == 3) step = values[2];
  }
  if (step == 0) return absl::InvalidArgumentError("range step cannot be zero");
  const __int128 span =
      step > 0 ? (__int128)stop - start : (__int128)start - stop;
  const __int128 abs_step = step > 0 ? step : -(__int128)step;
  const __int128 n = span <= 0 ? 0 : (span + abs_step - 1) / abs_step;
  if (n > ctx.options().limits.max_range) {
    return absl::InvalidArgumentError(absl::StrCat(
        "range has more than ", ctx.options().limits.max_range, " items"));
  }
  RETURN_IF_ERROR(ctx.Charge(static_cast<int64_t>(n)));
  Json out = Json::array();
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
    out.push_back(static_cast<int64_t>(start + (__int128)i * step));
  }
  return Value::FromJson(std::move(out));
}

absl::StatusOr<Value> MakeNamespace(const CallArgs& args) {
  auto ns = std::make_shared<Namespace>();
  if (args.positional.size() > 1) {
    return absl::InvalidArgumentError("namespace takes at most one mapping");
  }
  if (args.positional.size() == 1) {
    const Value& init = args.positional[0];
    if (!init.is_dict()) {
      return absl::InvalidArgumentError("namespace's argument must be a dict");
    }
    for (auto it = init.json().begin(); it != init.json().end(); ++it)
      ns->Set(it.key(), init.Child(it.value()));
  }
  for (const auto& [key, value] : args.keyword) {
    if (value.kind() == Value::Kind::kNamespace) {
      return absl::InvalidArgumentError(
          "a namespace cannot be stored in a namespace");
    }
    ns->Set(key, value);
  }
  return Value::FromObject(Value::Kind::kNamespace, std::move(ns));
}

absl::StatusOr<Value> StrftimeNow(const CallArgs& args, BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"format"}, "strftime_now"));
  if (!a[0] || !a[0]->is_string()) {
    return absl::InvalidArgumentError("strftime_now needs a format string");
  }
  if (a[0]->str().size() > 256) {
    return absl::InvalidArgumentError("strftime_now format too long");
  }
  return NewString(
      absl::FormatTime(a[0]->str(), ctx.options().now, ctx.options().time_zone),
      ctx);
}

absl::StatusOr<Value> MakeDict(const CallArgs& args, BuiltinContext& ctx) {
  if (!args.positional.empty()) {
    return absl::InvalidArgumentError("dict() takes keyword arguments only");
  }
  Json out = Json::object();
  for (const auto& [key, value] : args.keyword) {
    if (!value.is_json()) {
      return absl::InvalidArgumentError(
          absl::StrCat("dict(): '", key, "' is not a plain value"));
    }
    out[std::string(key)] = value.json();
  }
  RETURN_IF_ERROR(CheckNewValue(out, ctx));
  return Value::FromJson(std::move(out));
}

}  // namespace

absl::Status RaisedError(absl::string_view message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kRaisedPayload, absl::Cord("1"));
  return s;
}

bool IsRaisedError(const absl::Status& status) {
  return status.GetPayload(kRaisedPayload).has_value();
}

absl::Status CheckNewValue(const Json& json, BuiltinContext& ctx) {
  const Limits& limits = ctx.options().limits;
  const JsonMeasure m = MeasureJson(json, limits.max_value_depth);
  if (m.depth > limits.max_value_depth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "value nested deeper than ", limits.max_value_depth, " levels"));
  }
  return ctx.Charge(m.nodes + m.bytes);
}

std::optional<Method> FindMethod(const Value& receiver,
                                 absl::string_view name) {
  if (receiver.is_string()) {
    for (const MethodEntry& e : kStringMethods)
      if (e.name == name) return e.method;
  } else if (receiver.is_dict()) {
    for (const MethodEntry& e : kDictMethods)
      if (e.name == name) return e.method;
  } else if (receiver.loop() != nullptr && name == "cycle") {
    return Method::kCycle;
  }
  return std::nullopt;
}

absl::StatusOr<Value> CallMethod(Method method, const Value& receiver,
                                 const CallArgs& args, BuiltinContext& ctx) {
  if (receiver.is_string()) {
    return CallStringMethod(method, receiver.str(), args, ctx);
  }
  if (receiver.is_dict()) return CallDictMethod(method, receiver, args, ctx);
  if (const LoopState* loop = receiver.loop();
      loop != nullptr && method == Method::kCycle) {
    if (args.positional.empty() || !args.keyword.empty()) {
      return absl::InvalidArgumentError("loop.cycle needs positional values");
    }
    return args
        .positional[static_cast<size_t>(loop->index0) % args.positional.size()];
  }
  return absl::InternalError("method called on the wrong receiver");
}

absl::Span<const std::pair<absl::string_view, GlobalFunction>>
GlobalFunctions() {
  static constexpr std::pair<absl::string_view, GlobalFunction> kGlobals[] = {
      {"range", GlobalFunction::kRange},
      {"namespace", GlobalFunction::kNamespace},
      {"raise_exception", GlobalFunction::kRaiseException},
      {"strftime_now", GlobalFunction::kStrftimeNow},
      {"dict", GlobalFunction::kDict},
  };
  return kGlobals;
}

absl::StatusOr<Value> CallGlobal(GlobalFunction function, const CallArgs& args,
                                 BuiltinContext& ctx) {
  switch (function) {
    case GlobalFunction::kRange:
      return Range(args, ctx);
    case GlobalFunction::kNamespace:
      return MakeNamespace(args);
    case GlobalFunction::kRaiseException: {
      ASSIGN_OR_RETURN(auto a, BindArgs(args, {"message"}, "raise_exception"));
      return RaisedError(a[0] ? ToStr(*a[0]) : std::string());
    }
    case GlobalFunction::kStrftimeNow:
      return StrftimeNow(args, ctx);
    case GlobalFunction::kDict:
      return MakeDict(args, ctx);
  }
  return absl::InternalError("unknown global function");
}

}  // namespace lumen::chat::jinja
