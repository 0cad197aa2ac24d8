// The filters templates may use, with jinja2's semantics (and Hugging Face's
// `tojson`: json.dumps with ensure_ascii=False): the string and number
// filters and the table of all filters (sequence_filters.cc has the rest).

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chat/jinja/builtin_support.h"
#include "chat/jinja/builtins.h"
#include "chat/jinja/json_dump.h"
#include "chat/jinja/operators.h"
#include "chat/jinja/py_text.h"
#include "chat/jinja/sequence_filters.h"

namespace lumen::chat::jinja {

namespace {

using FilterFn = absl::StatusOr<Value> (*)(const Value&, const CallArgs&,
                                           BuiltinContext&);

absl::StatusOr<Value> Length(const Value& v, const CallArgs& args,
                             BuiltinContext&) {
  RETURN_IF_ERROR(NoArgs(args, "length"));
  if (v.is_undefined()) return Value::Int(0);
  if (v.is_string()) return Value::Int(CodePointCount(v.str()));
  if (v.is_list() || v.is_dict()) {
    return Value::Int(static_cast<int64_t>(v.json().size()));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("object of type '", TypeName(v), "' has no len()"));
}

absl::StatusOr<Value> Trim(const Value& v, const CallArgs& args,
                           BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"chars"}, "trim"));
  const std::string s = ToStr(v);
  std::optional<std::string> chars;
  if (a[0] && !a[0]->is_none()) {
    ASSIGN_OR_RETURN(chars, StringArg(a[0], "trim chars", ""));
  }
  return NewString(std::string(PyStrip(s, chars, true, true)), ctx);
}

template <std::string (*Transform)(absl::string_view)>
absl::StatusOr<Value> CaseFilter(const Value& v, const CallArgs& args,
                                 BuiltinContext& ctx) {
  RETURN_IF_ERROR(NoArgs(args, "case filter"));
  return NewString(Transform(ToStr(v)), ctx);
}

absl::StatusOr<Value> String(const Value& v, const CallArgs& args,
                             BuiltinContext& ctx) {
  RETURN_IF_ERROR(NoArgs(args, "string"));
  if (v.is_string()) return v;
  return NewString(ToStr(v), ctx);
}

absl::StatusOr<Value> ToJson(const Value& v, const CallArgs& args,
                             BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(
      auto a,
      BindArgs(args, {"ensure_ascii", "indent", "separators", "sort_keys"},
               "tojson"));
  if (!v.is_json()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Object of type ", TypeName(v), " is not JSON serializable"));
  }
  JsonDumpOptions o;
  o.ensure_ascii = a[0] && Truthy(*a[0]);
  if (a[1] && !a[1]->is_none()) {
    if (a[1]->is_string()) {
      o.indent = a[1]->str();
    } else if (a[1]->is_int() || a[1]->is_bool()) {
      const int64_t n = a[1]->AsInt();
      if (n > 64) return absl::InvalidArgumentError("tojson indent above 64");
      o.indent = std::string(n > 0 ? n : 0, ' ');
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "tojson indent must be an int or a string, not ", TypeName(*a[1])));
    }
    o.item_separator = ",";
  }
  if (a[2] && !a[2]->is_none()) {
    const Value& sep = *a[2];
    if (!sep.is_list() || sep.json().size() != 2 ||
        !sep.json()[0].is_string() || !sep.json()[1].is_string()) {
      return absl::InvalidArgumentError(
          "tojson separators must be a pair of strings");
    }
    o.item_separator = sep.json()[0].get<std::string>();
    o.key_separator = sep.json()[1].get<std::string>();
  }
  o.sort_keys = a[3] && Truthy(*a[3]);
  // Bound the text before writing it: indentation multiplies the size.
  const JsonMeasure m =
      MeasureJson(v.json(), ctx.options().limits.max_value_depth);
  const int64_t per_node =
      8 +
      static_cast<int64_t>(o.item_separator.size() + o.key_separator.size()) +
      (o.indent ? static_cast<int64_t>(o.indent->size()) * m.depth + 1 : 0);
  const int64_t estimate = m.bytes * 6 + m.nodes * per_node;
  if (estimate > 4 * ctx.options().limits.max_output_bytes + 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("tojson output would exceed ",
                     ctx.options().limits.max_output_bytes, " bytes"));
  }
  std::string out;
  DumpPythonJson(v.json(), o, &out);
  return NewString(std::move(out), ctx);
}

absl::StatusOr<Value> Safe(const Value& v, const CallArgs& args,
                           BuiltinContext& ctx) {
  RETURN_IF_ERROR(NoArgs(args, "safe"));
  if (v.is_string()) return v;
  return NewString(ToStr(v), ctx);
}

absl::StatusOr<Value> Default(const Value& v, const CallArgs& args,
                              BuiltinContext&) {
  ASSIGN_OR_RETURN(auto a,
                   BindArgs(args, {"default_value", "boolean"}, "default"));
  const bool boolean = a[1] && Truthy(*a[1]);
  if (v.is_undefined() || (boolean && !Truthy(v))) {
    return a[0] ? *a[0] : Value::String("");
  }
  return v;
}

absl::StatusOr<Value> Replace(const Value& v, const CallArgs& args,
                              BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"old", "new", "count"}, "replace"));
  if (!a[0] || !a[1]) {
    return absl::InvalidArgumentError("replace needs old and new");
  }
  ASSIGN_OR_RETURN(int64_t count, IntArg(a[2], "replace count", -1));
  return ReplaceBounded(ToStr(v), ToStr(*a[0]), ToStr(*a[1]), count, ctx);
}

absl::StatusOr<Value> Int(const Value& v, const CallArgs& args,
                          BuiltinContext&) {
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"default", "base"}, "int"));
  ASSIGN_OR_RETURN(int64_t fallback, IntArg(a[0], "int default", 0));
  ASSIGN_OR_RETURN(int64_t base, IntArg(a[1], "int base", 10));
  if (v.is_int() || v.is_bool()) return Value::Int(v.AsInt());
  if (v.is_float()) {
    const double d = v.AsDouble();
    if (!(d > -9.2e18 && d < 9.2e18)) return Value::Int(fallback);
    return Value::Int(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    std::string s(PyStrip(v.str(), std::nullopt, true, true));
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (base < 2 || base > 36) return Value::Int(fallback);
    errno = 0;
    char* end = nullptr;
    const long long parsed =
        std::strtoll(s.c_str(), &end, static_cast<int>(base));
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0) {
      return Value::Int(parsed);
    }
    // jinja2 falls back to int(float(s)).
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && d > -9.2e18 &&
        d < 9.2e18) {
      return Value::Int(static_cast<int64_t>(d));
    }
  }
  return Value::Int(fallback);
}

absl::StatusOr<Value> Float(const Value& v, const CallArgs& args,
                            BuiltinContext&) {
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"default"}, "float"));
  double fallback = 0.0;
  if (a[0] && a[0]->is_number()) fallback = a[0]->AsDouble();
  if (v.is_number()) return Value::Float(v.AsDouble());
  if (v.is_string()) {
    const std::string s(PyStrip(v.str(), std::nullopt, true, true));
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return Value::Float(d);
  }
  return Value::Float(fallback);
}

absl::StatusOr<Value> Abs(const Value& v, const CallArgs& args,
                          BuiltinContext&) {
  RETURN_IF_ERROR(NoArgs(args, "abs"));
  if (v.is_float()) return Value::Float(std::fabs(v.AsDouble()));
  if (v.is_int() || v.is_bool()) {
    const int64_t i = v.AsInt();
    if (i == INT64_MIN) return absl::InvalidArgumentError("integer overflow");
    return Value::Int(i < 0 ? -i : i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("bad operand type for abs(): '", TypeName(v), "'"));
}

absl::StatusOr<Value> Round(const Value& v, const CallArgs& args,
                            BuiltinContext&) {
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"precision", "method"}, "round"));
  ASSIGN_OR_RETURN(int64_t precision, IntArg(a[0], "round precision", 0));
  ASSIGN_OR_RETURN(std::string method,
                   StringArg(a[1], "round method", "common"));
  if (!v.is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("round: expected a number, got '", TypeName(v), "'"));
  }
  if (precision < -20 || precision > 20) {
    return absl::InvalidArgumentError("round precision out of range");
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.AsDouble() * scale;
  double r;
  if (method == "common") {
    r = std::nearbyint(x);  // Python's round(): half to even
  } else if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else {
    return absl::InvalidArgumentError(
        "round method must be common, ceil or floor");
  }
  return Value::Float(r / scale);
}

absl::StatusOr<Value> Indent(const Value& v, const CallArgs& args,
                             BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(auto a,
                   BindArgs(args, {"width", "first", "blank"}, "indent"));
  std::string pad;
  if (a[0] && a[0]->is_string()) {
    pad = a[0]->str();
  } else {
    ASSIGN_OR_RETURN(int64_t width, IntArg(a[0], "indent width", 4));
    pad.assign(static_cast<size_t>(std::clamp<int64_t>(width, 0, 256)), ' ');
  }
  const bool first = a[1] && Truthy(*a[1]);
  const bool blank = a[2] && Truthy(*a[2]);
  const std::string s = ToStr(v);
  std::string out;
  size_t start = 0;
  bool is_first = true;
  while (true) {
    const size_t nl = s.find('\n', start);
    const absl::string_view line(
        s.data() + start, (nl == std::string::npos ? s.size() : nl) - start);
    if ((!is_first || first) && (blank || !line.empty())) out += pad;
    absl::StrAppend(&out, line);
    if (nl == std::string::npos) break;
    out.push_back('\n');
    start = nl + 1;
    is_first = false;
    if (static_cast<int64_t>(out.size()) >
        ctx.options().limits.max_output_bytes) {
      return absl::InvalidArgumentError("indent result too long");
    }
  }
  return NewString(std::move(out), ctx);
}

struct FilterEntry {
  absl::string_view name;
  FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"abs", Abs},
    {"capitalize", CaseFilter<PyCapitalize>},
    {"count", Length},
    {"d", Default},
    {"default", Default},
    {"dictsort", filters::DictSort},
    {"first", filters::First},
    {"float", Float},
    {"indent", Indent},
    {"int", Int},
    {"items", filters::Items},
    {"join", filters::Join},
    {"last", filters::Last},
    {"length", Length},
    {"list", filters::List},
    {"lower", CaseFilter<PyLower>},
    {"map", filters::Map},
    {"max", filters::Max},
    {"min", filters::Min},
    {"reject", filters::Reject},
    {"rejectattr", filters::RejectAttr},
    {"replace", Replace},
    {"reverse", filters::Reverse},
    {"round", Round},
    {"safe", Safe},
    {"select", filters::Select},
    {"selectattr", filters::SelectAttr},
    {"sort", filters::Sort},
    {"string", String},
    {"sum", filters::Sum},
    {"title", CaseFilter<JinjaTitle>},
    {"tojson", ToJson},
    {"trim", Trim},
    {"unique", filters::Unique},
    {"upper", CaseFilter<PyUpper>},
};

}  // namespace

int FindFilter(absl::string_view name) {
  for (size_t i = 0; i < std::size(kFilters); ++i)
    if (kFilters[i].name == name) return static_cast<int>(i);
  return -1;
}

absl::StatusOr<Value> ApplyFilter(int filter, const Value& subject,
                                  const CallArgs& args, BuiltinContext& ctx) {
  if (filter < 0 || filter >= static_cast<int>(std::size(kFilters))) {
    return absl::InternalError("bad filter index");
  }
  return kFilters[filter].fn(subject, args, ctx);
}

}  // namespace lumen::chat::jinja
