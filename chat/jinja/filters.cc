// The filters templates may use, with jinja2's semantics (and Hugging Face's
// `tojson`: json.dumps with ensure_ascii=False).

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

namespace lumen::chat::jinja {

namespace {

using FilterFn = absl::StatusOr<Value> (*)(const Value&, const CallArgs&,
                                           BuiltinContext&);

absl::Status NoArgs(const CallArgs& args, absl::string_view name) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " takes no arguments"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Value> NewString(std::string s, BuiltinContext& ctx) {
  if (static_cast<int64_t>(s.size()) > ctx.options().limits.max_output_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("string longer than ",
                     ctx.options().limits.max_output_bytes, " bytes"));
  }
  RETURN_IF_ERROR(ctx.Charge(static_cast<int64_t>(s.size())));
  return Value::String(std::move(s));
}

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

absl::StatusOr<Value> First(const Value& v, const CallArgs& args,
                            BuiltinContext&) {
  RETURN_IF_ERROR(NoArgs(args, "first"));
  if (v.is_list()) {
    if (v.json().empty())
      return Value::Undefined("No first item, sequence was empty.");
    return v.Child(v.json().front());
  }
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "first"));
  if (items.empty())
    return Value::Undefined("No first item, sequence was empty.");
  return items.front();
}

absl::StatusOr<Value> Last(const Value& v, const CallArgs& args,
                           BuiltinContext&) {
  RETURN_IF_ERROR(NoArgs(args, "last"));
  if (v.is_list()) {
    if (v.json().empty())
      return Value::Undefined("No last item, sequence was empty.");
    return v.Child(v.json().back());
  }
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "last"));
  if (items.empty())
    return Value::Undefined("No last item, sequence was empty.");
  return items.back();
}

absl::StatusOr<Value> Join(const Value& v, const CallArgs& args,
                           BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"d", "attribute"}, "join"));
  ASSIGN_OR_RETURN(std::string separator,
                   StringArg(a[0], "join separator", ""));
  ASSIGN_OR_RETURN(std::string attribute,
                   StringArg(a[1], "join attribute", ""));
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "join"));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    AppendStr(attribute.empty() ? items[i] : AttributePath(items[i], attribute),
              &out);
    if (static_cast<int64_t>(out.size()) >
        ctx.options().limits.max_output_bytes) {
      return absl::InvalidArgumentError("join result too long");
    }
  }
  return NewString(std::move(out), ctx);
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

absl::StatusOr<Value> Items(const Value& v, const CallArgs& args,
                            BuiltinContext& ctx) {
  RETURN_IF_ERROR(NoArgs(args, "items"));
  if (v.is_undefined()) return Value::FromJson(Json::array());
  if (!v.is_dict()) {
    return absl::InvalidArgumentError(
        absl::StrCat("items: expected a mapping, got '", TypeName(v), "'"));
  }
  Json out = Json::array();
  for (auto it = v.json().begin(); it != v.json().end(); ++it)
    out.push_back(Json::array({it.key(), it.value()}));
  RETURN_IF_ERROR(CheckNewValue(out, ctx));
  return Value::FromJson(std::move(out));
}

// Sort key for dictsort/sort/unique: lower-cased strings unless case
// sensitive.
Json SortKey(const Json& j, bool case_sensitive) {
  if (!case_sensitive && j.is_string()) {
    return Json(PyLower(j.get_ref<const std::string&>()));
  }
  return j;
}

// Stable sort of `items` by `keys` with Python's ordering.
absl::Status SortByKeys(std::vector<std::pair<Json, Json>>* items,
                        bool reverse) {
  absl::Status error;
  std::stable_sort(
      items->begin(), items->end(), [&](const auto& x, const auto& y) {
        if (!error.ok()) return false;
        const Value a = Value::FromJson(x.first);
        const Value b = Value::FromJson(y.first);
        absl::StatusOr<bool> less =
            ApplyCompare(CompareOp::kLt, reverse ? b : a, reverse ? a : b);
        if (!less.ok()) {
          error = less.status();
          return false;
        }
        return *less;
      });
  return error;
}

absl::StatusOr<Value> DictSort(const Value& v, const CallArgs& args,
                               BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(
      auto a, BindArgs(args, {"case_sensitive", "by", "reverse"}, "dictsort"));
  if (!v.is_dict()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dictsort: expected a mapping, got '", TypeName(v), "'"));
  }
  const bool case_sensitive = a[0] && Truthy(*a[0]);
  ASSIGN_OR_RETURN(std::string by, StringArg(a[1], "dictsort by", "key"));
  if (by != "key" && by != "value") {
    return absl::InvalidArgumentError("dictsort: by must be 'key' or 'value'");
  }
  const bool reverse = a[2] && Truthy(*a[2]);
  std::vector<std::pair<Json, Json>> keyed;
  for (auto it = v.json().begin(); it != v.json().end(); ++it) {
    const Json& sort_on = by == "key" ? Json(it.key()) : it.value();
    keyed.emplace_back(SortKey(sort_on, case_sensitive),
                       Json::array({it.key(), it.value()}));
  }
  RETURN_IF_ERROR(SortByKeys(&keyed, reverse));
  Json out = Json::array();
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  RETURN_IF_ERROR(CheckNewValue(out, ctx));
  return Value::FromJson(std::move(out));
}

absl::StatusOr<Value> List(const Value& v, const CallArgs& args,
                           BuiltinContext& ctx) {
  RETURN_IF_ERROR(NoArgs(args, "list"));
  if (v.is_list()) return v;
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "list"));
  return ListOf(items, "list", ctx);
}

absl::StatusOr<Value> Map(const Value& v, const CallArgs& args,
                          BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "map"));
  std::vector<Value> out;
  if (args.positional.empty()) {
    // map(attribute="a.b", default=...)
    ASSIGN_OR_RETURN(auto a, BindArgs(args, {"attribute", "default"}, "map"));
    if (!a[0] || !a[0]->is_string()) {
      return absl::InvalidArgumentError(
          "map needs a filter name or attribute=\"name\"");
    }
    for (const Value& item : items) {
      Value mapped = AttributePath(item, a[0]->str());
      if (mapped.is_undefined() && a[1]) mapped = *a[1];
      out.push_back(std::move(mapped));
    }
    return ListOf(out, "map", ctx);
  }
  if (!args.positional[0].is_string()) {
    return absl::InvalidArgumentError(
        "map: the filter must be named by a string");
  }
  const int filter = FindFilter(args.positional[0].str());
  if (filter < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("map: no filter named '", args.positional[0].str(), "'"));
  }
  CallArgs inner;
  inner.positional.assign(args.positional.begin() + 1, args.positional.end());
  inner.keyword = args.keyword;
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(Value mapped, ApplyFilter(filter, item, inner, ctx));
    out.push_back(std::move(mapped));
  }
  return ListOf(out, "map", ctx);
}

// select / reject / selectattr / rejectattr.
absl::StatusOr<Value> SelectImpl(const Value& v, const CallArgs& args,
                                 BuiltinContext& ctx, bool keep_if,
                                 bool by_attribute, absl::string_view name) {
  if (!args.keyword.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " takes no keyword arguments"));
  }
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty() || !args.positional[0].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " needs an attribute name"));
    }
    attribute = args.positional[0].str();
    next = 1;
  }
  int test = -1;
  CallArgs test_args;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": the test must be named by a string"));
    }
    test = FindTest(args.positional[next].str());
    if (test < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": no test named '", args.positional[next].str(), "'"));
    }
    test_args.positional.assign(args.positional.begin() + next + 1,
                                args.positional.end());
  }
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, name));
  std::vector<Value> out;
  for (const Value& item : items) {
    const Value subject = by_attribute ? AttributePath(item, attribute) : item;
    bool passes;
    if (test < 0) {
      passes = Truthy(subject);
    } else {
      ASSIGN_OR_RETURN(passes, ApplyTest(test, subject, test_args, ctx));
    }
    if (passes == keep_if) out.push_back(item);
  }
  return ListOf(out, name, ctx);
}

absl::StatusOr<Value> Select(const Value& v, const CallArgs& a,
                             BuiltinContext& c) {
  return SelectImpl(v, a, c, true, false, "select");
}
absl::StatusOr<Value> Reject(const Value& v, const CallArgs& a,
                             BuiltinContext& c) {
  return SelectImpl(v, a, c, false, false, "reject");
}
absl::StatusOr<Value> SelectAttr(const Value& v, const CallArgs& a,
                                 BuiltinContext& c) {
  return SelectImpl(v, a, c, true, true, "selectattr");
}
absl::StatusOr<Value> RejectAttr(const Value& v, const CallArgs& a,
                                 BuiltinContext& c) {
  return SelectImpl(v, a, c, false, true, "rejectattr");
}

absl::StatusOr<Value> Unique(const Value& v, const CallArgs& args,
                             BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(auto a,
                   BindArgs(args, {"case_sensitive", "attribute"}, "unique"));
  const bool case_sensitive = a[0] && Truthy(*a[0]);
  ASSIGN_OR_RETURN(std::string attribute,
                   StringArg(a[1], "unique attribute", ""));
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "unique"));
  std::vector<Value> out;
  std::vector<Json> seen;
  for (const Value& item : items) {
    const Value keyed =
        attribute.empty() ? item : AttributePath(item, attribute);
    if (!keyed.is_json()) {
      return absl::InvalidArgumentError("unique: items must be plain values");
    }
    const Json key = SortKey(keyed.json(), case_sensitive);
    bool duplicate = false;
    for (const Json& s : seen) {
      if (JsonEquals(s, key)) {
        duplicate = true;
        break;
      }
    }
    RETURN_IF_ERROR(ctx.Charge(static_cast<int64_t>(seen.size())));
    if (!duplicate) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return ListOf(out, "unique", ctx);
}

absl::StatusOr<Value> Reverse(const Value& v, const CallArgs& args,
                              BuiltinContext& ctx) {
  RETURN_IF_ERROR(NoArgs(args, "reverse"));
  if (v.is_string()) {
    const std::vector<size_t> offsets = CodePointOffsets(v.str());
    std::string out;
    for (size_t i = offsets.size() - 1; i > 0; --i)
      out.append(v.str(), offsets[i - 1], offsets[i] - offsets[i - 1]);
    return NewString(std::move(out), ctx);
  }
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "reverse"));
  std::reverse(items.begin(), items.end());
  return ListOf(items, "reverse", ctx);
}

absl::StatusOr<Value> Sort(const Value& v, const CallArgs& args,
                           BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(
      auto a,
      BindArgs(args, {"reverse", "case_sensitive", "attribute"}, "sort"));
  const bool reverse = a[0] && Truthy(*a[0]);
  const bool case_sensitive = a[1] && Truthy(*a[1]);
  ASSIGN_OR_RETURN(std::string attribute,
                   StringArg(a[2], "sort attribute", ""));
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "sort"));
  std::vector<std::pair<Json, Json>> keyed;
  for (const Value& item : items) {
    const Value k = attribute.empty() ? item : AttributePath(item, attribute);
    if (!k.is_json() || !item.is_json()) {
      return absl::InvalidArgumentError("sort: items must be plain values");
    }
    keyed.emplace_back(SortKey(k.json(), case_sensitive), item.json());
  }
  RETURN_IF_ERROR(SortByKeys(&keyed, reverse));
  Json out = Json::array();
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  RETURN_IF_ERROR(CheckNewValue(out, ctx));
  return Value::FromJson(std::move(out));
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

// sum / min / max.
absl::StatusOr<Value> Sum(const Value& v, const CallArgs& args,
                          BuiltinContext& ctx) {
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"attribute", "start"}, "sum"));
  ASSIGN_OR_RETURN(std::string attribute, StringArg(a[0], "sum attribute", ""));
  Value total = a[1] ? *a[1] : Value::Int(0);
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "sum"));
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(
        total,
        ApplyBinary(BinaryOp::kAdd, total,
                    attribute.empty() ? item : AttributePath(item, attribute),
                    ctx));
  }
  return total;
}

absl::StatusOr<Value> Extreme(const Value& v, const CallArgs& args,
                              BuiltinContext&, bool want_max) {
  ASSIGN_OR_RETURN(auto a, BindArgs(args, {"case_sensitive", "attribute"},
                                    want_max ? "max" : "min"));
  const bool case_sensitive = a[0] && Truthy(*a[0]);
  ASSIGN_OR_RETURN(std::string attribute, StringArg(a[1], "attribute", ""));
  ASSIGN_OR_RETURN(std::vector<Value> items, IterateValue(v, "min/max"));
  if (items.empty())
    return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key;
  for (size_t i = 0; i < items.size(); ++i) {
    const Value k =
        attribute.empty() ? items[i] : AttributePath(items[i], attribute);
    if (!k.is_json())
      return absl::InvalidArgumentError("min/max: plain values only");
    Value key = Value::FromJson(SortKey(k.json(), case_sensitive));
    if (i > 0) {
      ASSIGN_OR_RETURN(bool better,
                       ApplyCompare(want_max ? CompareOp::kGt : CompareOp::kLt,
                                    key, best_key));
      if (!better) continue;
    }
    best = i;
    best_key = std::move(key);
  }
  return items[best];
}

absl::StatusOr<Value> Min(const Value& v, const CallArgs& a,
                          BuiltinContext& c) {
  return Extreme(v, a, c, false);
}
absl::StatusOr<Value> Max(const Value& v, const CallArgs& a,
                          BuiltinContext& c) {
  return Extreme(v, a, c, true);
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
    {"dictsort", DictSort},
    {"first", First},
    {"float", Float},
    {"indent", Indent},
    {"int", Int},
    {"items", Items},
    {"join", Join},
    {"last", Last},
    {"length", Length},
    {"list", List},
    {"lower", CaseFilter<PyLower>},
    {"map", Map},
    {"max", Max},
    {"min", Min},
    {"reject", Reject},
    {"rejectattr", RejectAttr},
    {"replace", Replace},
    {"reverse", Reverse},
    {"round", Round},
    {"safe", Safe},
    {"select", Select},
    {"selectattr", SelectAttr},
    {"sort", Sort},
    {"string", String},
    {"sum", Sum},
    {"title", CaseFilter<JinjaTitle>},
    {"tojson", ToJson},
    {"trim", Trim},
    {"unique", Unique},
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
