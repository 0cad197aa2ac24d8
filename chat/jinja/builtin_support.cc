#include "chat/jinja/builtin_support.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja {

absl::StatusOr<std::vector<std::optional<Value>>> BindArgs(
    const CallArgs& args, std::initializer_list<absl::string_view> names,
    absl::string_view function, std::vector<Value>* rest) {
  std::vector<std::optional<Value>> bound(names.size());
  const size_t n = names.size();
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < n) {
      bound[i] = args.positional[i];
    } else if (rest != nullptr) {
      rest->push_back(args.positional[i]);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(function, "() takes at most ", n, " argument(s), got ",
                       args.positional.size()));
    }
  }
  for (const auto& [key, value] : args.keyword) {
    size_t i = 0;
    for (absl::string_view name : names) {
      if (name == key) break;
      ++i;
    }
    if (i == n) {
      return absl::InvalidArgumentError(absl::StrCat(
          function, "() got an unexpected keyword argument '", key, "'"));
    }
    if (bound[i]) {
      return absl::InvalidArgumentError(absl::StrCat(
          function, "() got multiple values for argument '", key, "'"));
    }
    bound[i] = value;
  }
  return bound;
}

absl::StatusOr<std::vector<Value>> IterateValue(const Value& v,
                                                absl::string_view function) {
  std::vector<Value> items;
  if (v.is_undefined()) return items;
  if (v.is_list()) {
    items.reserve(v.json().size());
    for (const Json& e : v.json()) items.push_back(v.Child(e));
  } else if (v.is_dict()) {
    for (auto it = v.json().begin(); it != v.json().end(); ++it)
      items.push_back(Value::String(it.key()));
  } else if (v.is_string()) {
    const std::string& s = v.str();
    for (size_t pos = 0; pos < s.size();) {
      const size_t start = pos;
      DecodeUtf8(s, &pos);
      items.push_back(Value::String(s.substr(start, pos - start)));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(function, ": '", TypeName(v), "' object is not iterable"));
  }
  return items;
}

Value AttributePath(const Value& item, absl::string_view path) {
  Value current = item;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    bool is_index = !part.empty();
    int64_t index = 0;
    for (char c : part) {
      if (c < '0' || c > '9' || index > (int64_t{1} << 40)) {
        is_index = false;
        break;
      }
      index = index * 10 + (c - '0');
    }
    if (current.is_dict()) {
      auto it = current.json().find(part);
      if (it == current.json().end()) {
        return Value::Undefined(
            absl::StrCat("'dict object' has no attribute '", part, "'"));
      }
      current = current.Child(*it);
    } else if (current.is_list() && is_index &&
               index < static_cast<int64_t>(current.json().size())) {
      current = current.Child(current.json()[static_cast<size_t>(index)]);
    } else if (const Namespace* ns = current.ns(); ns != nullptr) {
      const Value* v = ns->Find(part);
      if (v == nullptr) return Value::Undefined("no such namespace attribute");
      current = *v;
    } else {
      return Value::Undefined(absl::StrCat(
          "'", TypeName(current), " object' has no attribute '", part, "'"));
    }
  }
  return current;
}

absl::StatusOr<Value> ListOf(const std::vector<Value>& items,
                             absl::string_view function, BuiltinContext& ctx) {
  Json list = Json::array();
  for (const Value& v : items) {
    if (!v.is_json()) {
      const std::string hint = v.undefined_hint();
      return absl::InvalidArgumentError(absl::StrCat(
          function, ": a list can hold only plain values, not ",
          v.is_undefined() ? (hint.empty() ? std::string("an undefined value")
                                           : std::string(hint))
                           : TypeName(v)));
    }
    list.push_back(v.json());
  }
  if (absl::Status s = CheckNewValue(list, ctx); !s.ok()) return s;
  return Value::FromJson(std::move(list));
}

absl::StatusOr<std::string> StringArg(const std::optional<Value>& v,
                                      absl::string_view what,
                                      std::string fallback) {
  if (!v || v->is_undefined() || v->is_none()) return fallback;
  if (!v->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a string, not ", TypeName(*v)));
  }
  return v->str();
}

absl::StatusOr<int64_t> IntArg(const std::optional<Value>& v,
                               absl::string_view what, int64_t fallback) {
  if (!v || v->is_undefined() || v->is_none()) return fallback;
  if (!v->is_int() && !v->is_bool()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be an integer, not ", TypeName(*v)));
  }
  return v->AsInt();
}

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
  if (absl::Status st = ctx.Charge(static_cast<int64_t>(s.size())); !st.ok()) {
    return st;
  }
  return Value::String(std::move(s));
}

absl::StatusOr<Value> ReplaceBounded(absl::string_view s,
                                     absl::string_view old_text,
                                     absl::string_view new_text, int64_t count,
                                     BuiltinContext& ctx) {
  int64_t hits = 0;
  if (old_text.empty()) {
    hits = CodePointCount(s) + 1;
  } else {
    for (size_t pos = FindBytes(s, old_text); pos != absl::string_view::npos;
         pos = FindBytes(s, old_text, pos + old_text.size())) {
      ++hits;
    }
  }
  if (count >= 0) hits = std::min(hits, count);
  const int64_t size = static_cast<int64_t>(s.size()) +
                       hits * (static_cast<int64_t>(new_text.size()) -
                               static_cast<int64_t>(old_text.size()));
  if (size > ctx.options().limits.max_output_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("replace result longer than ",
                     ctx.options().limits.max_output_bytes, " bytes"));
  }
  if (absl::Status st = ctx.Charge(size + static_cast<int64_t>(s.size()));
      !st.ok()) {
    return st;
  }
  return Value::String(PyReplace(s, old_text, new_text, count));
}

}  // namespace lumen::chat::jinja
