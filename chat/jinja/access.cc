#include "chat/jinja/access.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "chat/jinja/operators.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja {

namespace {

Value MethodValue(Method m, const Value& receiver) {
  auto c = std::make_shared<Callable>();
  c->type = Callable::Type::kMethod;
  c->method = m;
  c->receiver = receiver;
  return Value::FromObject(Value::Kind::kCallable, std::move(c));
}

// Python methods of dict that the immutable sandbox refuses.
bool IsUnsafeDictAttribute(absl::string_view name) {
  static constexpr absl::string_view kNames[] = {
      "clear", "copy", "fromkeys", "pop", "popitem", "setdefault", "update"};
  for (absl::string_view n : kNames)
    if (n == name) return true;
  return false;
}

Value LoopAttribute(const Value& loop_value, absl::string_view name) {
  const LoopState& loop = *loop_value.loop();
  const int64_t n = static_cast<int64_t>(loop.items.size());
  const int64_t i = loop.index0;
  if (name == "index0") return Value::Int(i);
  if (name == "index") return Value::Int(i + 1);
  if (name == "revindex") return Value::Int(n - i);
  if (name == "revindex0") return Value::Int(n - i - 1);
  if (name == "first") return Value::Bool(i == 0);
  if (name == "last") return Value::Bool(i == n - 1);
  if (name == "length") return Value::Int(n);
  if (name == "depth") return Value::Int(1);
  if (name == "depth0") return Value::Int(0);
  if (name == "previtem") {
    if (i > 0) return loop.items[i - 1];
    return Value::Undefined("there is no previous item");
  }
  if (name == "nextitem") {
    if (i + 1 < n) return loop.items[i + 1];
    return Value::Undefined("there is no next item");
  }
  if (std::optional<Method> m = FindMethod(loop_value, name)) {
    return MethodValue(*m, loop_value);
  }
  return Value::Undefined(
      absl::StrCat("'LoopContext object' has no attribute '", name, "'"));
}

// Python's PySlice_AdjustIndices, then the indices it selects.
std::vector<int64_t> SliceIndices(int64_t n, std::optional<int64_t> start_arg,
                                  std::optional<int64_t> stop_arg,
                                  int64_t step) {
  const int64_t lower = step < 0 ? -1 : 0;
  const int64_t upper = step < 0 ? n - 1 : n;
  auto adjust = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t x = *v;
    if (x < 0) {
      x = x < -n ? lower : x + n;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  const int64_t start = adjust(start_arg, step < 0 ? upper : lower);
  const int64_t stop = adjust(stop_arg, step < 0 ? lower : upper);
  std::vector<int64_t> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
    out.push_back(i);
    if (__builtin_add_overflow(i, step, &i)) break;
  }
  return out;
}

}  // namespace

absl::StatusOr<Value> GetAttribute(const Value& object, absl::string_view name,
                                   const Value& name_value) {
  if (object.is_undefined()) return UndefinedError(object);
  if (object.is_dict()) {
    if (std::optional<Method> m = FindMethod(object, name)) {
      return MethodValue(*m, object);
    }
    if (IsUnsafeDictAttribute(name)) {
      return Value::Undefined(absl::StrCat("access to attribute '", name,
                                           "' of 'dict' object is unsafe"));
    }
    const Json& dict = object.json();
    if (auto it = dict.find(name); it != dict.end()) return object.Child(*it);
    return Value::MissingAttribute(object, name_value);
  }
  if (object.is_string()) {
    if (std::optional<Method> m = FindMethod(object, name)) {
      return MethodValue(*m, object);
    }
  }
  if (const Namespace* ns = object.ns(); ns != nullptr) {
    if (const Value* v = ns->Find(name); v != nullptr) return *v;
  }
  if (object.loop() != nullptr) return LoopAttribute(object, name);
  return Value::MissingAttribute(object, name_value);
}

absl::StatusOr<Value> GetItem(const Value& object, const Value& key) {
  if (object.is_undefined()) return UndefinedError(object);
  if (object.is_dict()) {
    if (!key.is_string())
      return Value::Undefined("'dict object' has no such key");
    const Json& dict = object.json();
    if (auto it = dict.find(key.str()); it != dict.end()) {
      return object.Child(*it);
    }
    return GetAttribute(object, key.str(), key);
  }
  if (object.is_list() && (key.is_int() || key.is_bool())) {
    const Json& list = object.json();
    const int64_t n = static_cast<int64_t>(list.size());
    int64_t i = key.AsInt();
    if (i < 0 && i >= -n) i += n;
    if (i < 0 || i >= n) {
      return Value::Undefined(
          absl::StrCat("list index ", key.AsInt(), " out of range"));
    }
    return object.Child(list[static_cast<size_t>(i)]);
  }
  if (object.is_string() && (key.is_int() || key.is_bool())) {
    const std::vector<size_t> offsets = CodePointOffsets(object.str());
    const int64_t n = static_cast<int64_t>(offsets.size()) - 1;
    int64_t i = key.AsInt();
    if (i < 0 && i >= -n) i += n;
    if (i < 0 || i >= n) {
      return Value::Undefined(
          absl::StrCat("string index ", key.AsInt(), " out of range"));
    }
    return Value::String(
        object.str().substr(offsets[i], offsets[i + 1] - offsets[i]));
  }
  if (key.is_string()) return GetAttribute(object, key.str(), key);
  return Value::Undefined(
      absl::StrCat("'", TypeName(object), " object' has no such item"));
}

absl::StatusOr<Value> SliceValue(const Value& object,
                                 std::optional<int64_t> start,
                                 std::optional<int64_t> stop,
                                 std::optional<int64_t> step_arg,
                                 BuiltinContext& ctx) {
  if (object.is_undefined()) return UndefinedError(object);
  const int64_t step = step_arg.value_or(1);
  if (step == 0) {
    return absl::InvalidArgumentError("slice step cannot be zero");
  }
  if (object.is_list()) {
    const Json& list = object.json();
    Json out = Json::array();
    for (int64_t i :
         SliceIndices(static_cast<int64_t>(list.size()), start, stop, step)) {
      out.push_back(list[static_cast<size_t>(i)]);
    }
    if (absl::Status s = CheckNewValue(out, ctx); !s.ok()) return s;
    return Value::FromJson(std::move(out));
  }
  if (object.is_string()) {
    const std::string& s = object.str();
    const std::vector<size_t> offsets = CodePointOffsets(s);
    std::string out;
    for (int64_t i : SliceIndices(static_cast<int64_t>(offsets.size()) - 1,
                                  start, stop, step)) {
      out.append(s, offsets[i], offsets[i + 1] - offsets[i]);
    }
    if (absl::Status st = ctx.Charge(static_cast<int64_t>(out.size()));
        !st.ok()) {
      return st;
    }
    return Value::String(std::move(out));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", TypeName(object), "' object is not subscriptable"));
}

absl::StatusOr<std::vector<Value>> Unpack(const Value& value, size_t n) {
  std::vector<Value> parts;
  if (value.is_list()) {
    for (const Json& e : value.json()) parts.push_back(value.Child(e));
  } else if (value.is_string()) {
    const std::string& s = value.str();
    for (size_t pos = 0; pos < s.size();) {
      const size_t start = pos;
      DecodeUtf8(s, &pos);
      parts.push_back(Value::String(s.substr(start, pos - start)));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot unpack non-iterable ", TypeName(value), " object"));
  }
  if (parts.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        parts.size() > n ? "too many" : "not enough",
        " values to unpack (expected ", n, ", got ", parts.size(), ")"));
  }
  return parts;
}

}  // namespace lumen::chat::jinja
