#include "chat/jinja/sequence_filters.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chat/jinja/builtin_support.h"
#include "chat/jinja/operators.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja::filters {

namespace {

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

}  // namespace

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

absl::StatusOr<Value> Min(const Value& v, const CallArgs& a,
                          BuiltinContext& c) {
  return Extreme(v, a, c, false);
}

absl::StatusOr<Value> Max(const Value& v, const CallArgs& a,
                          BuiltinContext& c) {
  return Extreme(v, a, c, true);
}

}  // namespace lumen::chat::jinja::filters
