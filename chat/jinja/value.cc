#include "chat/jinja/value.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja {

namespace {

// Shared constants: most values a template makes are one of these.
const std::shared_ptr<const Json>& SharedJson(int which) {
  static const auto* constants = new std::shared_ptr<const Json>[3] {
    std::make_shared<const Json>(nullptr), std::make_shared<const Json>(false),
        std::make_shared<const Json>(true),
  };
  return constants[which];
}

}  // namespace

Value Value::Undefined(std::string hint) {
  Value v;
  if (!hint.empty()) {
    v.json_ = std::make_shared<const Json>(std::move(hint));
    v.why_ = Why::kHint;
  }
  return v;
}

namespace {

// Python type names of the objects an attribute can be missing on.
constexpr const char* kTypeNames[] = {
    "Undefined", "NoneType", "bool",      "int",         "float",   "str",
    "list",      "dict",     "Namespace", "LoopContext", "function"};

uint8_t TypeCode(const Value& v) {
  const std::string name = TypeName(v);
  for (uint8_t i = 0; i < std::size(kTypeNames); ++i)
    if (name == kTypeNames[i]) return i;
  return 0;
}

}  // namespace

Value Value::UndefinedName(const Value& name) {
  Value v;
  if (name.is_string()) {
    v.json_ = name.json_;
    v.why_ = Why::kName;
  }
  return v;
}

Value Value::MissingAttribute(const Value& object, const Value& name) {
  Value v;
  if (name.is_string()) {
    v.json_ = name.json_;
    v.why_ = Why::kAttribute;
    v.owner_type_ = TypeCode(object);
  }
  return v;
}

Value Value::FromJson(Json json) {
  Value v;
  v.kind_ = Kind::kJson;
  v.json_ = std::make_shared<const Json>(std::move(json));
  return v;
}

Value Value::Borrowed(std::shared_ptr<const Json> owner, const Json* node) {
  Value v;
  v.kind_ = Kind::kJson;
  v.json_ = std::shared_ptr<const Json>(std::move(owner), node);
  return v;
}

Value Value::String(std::string s) { return FromJson(Json(std::move(s))); }
Value Value::Int(int64_t i) { return FromJson(Json(i)); }
Value Value::Float(double d) { return FromJson(Json(d)); }

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kJson;
  v.json_ = SharedJson(b ? 2 : 1);
  return v;
}

Value Value::None() {
  Value v;
  v.kind_ = Kind::kJson;
  v.json_ = SharedJson(0);
  return v;
}

Value Value::FromObject(Kind kind, std::shared_ptr<Object> object) {
  Value v;
  v.kind_ = kind;
  v.object_ = std::move(object);
  return v;
}

std::string Value::undefined_hint() const {
  if (kind_ != Kind::kUndefined || json_ == nullptr || !json_->is_string())
    return {};
  const std::string& text = json_->get_ref<const std::string&>();
  switch (why_) {
    case Why::kName:
      return absl::StrCat("'", text, "' is undefined");
    case Why::kAttribute:
      return absl::StrCat("'", kTypeNames[owner_type_],
                          " object' has no attribute '", text, "'");
    default:
      return text;
  }
}

bool Value::is_int() const {
  if (!is_json()) return false;
  if (json_->is_number_integer() && !json_->is_number_unsigned()) return true;
  return json_->is_number_unsigned() &&
         json_->get<uint64_t>() <=
             static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

bool Value::is_float() const {
  if (!is_json()) return false;
  return json_->is_number_float() || (json_->is_number_unsigned() && !is_int());
}

int64_t Value::AsInt() const {
  if (json_->is_boolean()) return json_->get<bool>() ? 1 : 0;
  if (json_->is_number_unsigned()) {
    return static_cast<int64_t>(json_->get<uint64_t>());
  }
  if (json_->is_number_integer()) return json_->get<int64_t>();
  const double d = json_->get<double>();
  if (!(d > -9.2e18 && d < 9.2e18)) return 0;  // nan, inf, huge
  return static_cast<int64_t>(d);
}

double Value::AsDouble() const {
  if (json_->is_boolean()) return json_->get<bool>() ? 1.0 : 0.0;
  return json_->get<double>();
}

Namespace* Value::ns() const {
  return kind_ == Kind::kNamespace ? static_cast<Namespace*>(object_.get())
                                   : nullptr;
}

LoopState* Value::loop() const {
  return kind_ == Kind::kLoop ? static_cast<LoopState*>(object_.get())
                              : nullptr;
}

const Callable* Value::callable() const {
  return kind_ == Kind::kCallable ? static_cast<Callable*>(object_.get())
                                  : nullptr;
}

const Value* Namespace::Find(absl::string_view name) const {
  for (const auto& [key, value] : attributes)
    if (key == name) return &value;
  return nullptr;
}

void Namespace::Set(absl::string_view name, Value value) {
  for (auto& [key, v] : attributes) {
    if (key == name) {
      v = std::move(value);
      return;
    }
  }
  attributes.emplace_back(std::string(name), std::move(value));
}

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kJson:
      break;
    default:
      return true;
  }
  const Json& j = v.json();
  switch (j.type()) {
    case Json::value_t::null:
      return false;
    case Json::value_t::boolean:
      return j.get<bool>();
    case Json::value_t::number_integer:
      return j.get<int64_t>() != 0;
    case Json::value_t::number_unsigned:
      return j.get<uint64_t>() != 0;
    case Json::value_t::number_float:
      return j.get<double>() != 0.0;
    case Json::value_t::string:
      return !j.get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object:
      return !j.empty();
    default:
      return false;
  }
}

std::string TypeName(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNamespace:
      return "Namespace";
    case Value::Kind::kLoop:
      return "LoopContext";
    case Value::Kind::kCallable:
      return v.callable()->type == Callable::Type::kMacro ? "Macro"
                                                          : "function";
    case Value::Kind::kJson:
      break;
  }
  if (v.is_none()) return "NoneType";
  if (v.is_bool()) return "bool";
  if (v.is_int()) return "int";
  if (v.is_float()) return "float";
  if (v.is_string()) return "str";
  if (v.is_list()) return "list";
  return "dict";
}

namespace {

void AppendJsonRepr(const Json& j, std::string* out) {
  switch (j.type()) {
    case Json::value_t::null:
      out->append("None");
      return;
    case Json::value_t::boolean:
      out->append(j.get<bool>() ? "True" : "False");
      return;
    case Json::value_t::number_integer:
      absl::StrAppend(out, j.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      absl::StrAppend(out, j.get<uint64_t>());
      return;
    case Json::value_t::number_float:
      out->append(PyFloatRepr(j.get<double>()));
      return;
    case Json::value_t::string:
      out->append(PyStrRepr(j.get_ref<const std::string&>()));
      return;
    case Json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const Json& e : j) {
        if (!first) out->append(", ");
        first = false;
        AppendJsonRepr(e, out);
      }
      out->push_back(']');
      return;
    }
    case Json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, value] : j.items()) {
        if (!first) out->append(", ");
        first = false;
        out->append(PyStrRepr(key));
        out->append(": ");
        AppendJsonRepr(value, out);
      }
      out->push_back('}');
      return;
    }
    default:
      return;
  }
}

void AppendObjectText(const Value& v, std::string* out) {
  switch (v.kind()) {
    case Value::Kind::kNamespace: {
      out->append("<Namespace {");
      bool first = true;
      for (const auto& [key, value] : v.ns()->attributes) {
        if (!first) out->append(", ");
        first = false;
        out->append(PyStrRepr(key));
        out->append(": ");
        AppendRepr(value, out);
      }
      out->append("}>");
      return;
    }
    case Value::Kind::kLoop:
      absl::StrAppend(out, "<LoopContext ", v.loop()->index0 + 1, "/",
                      v.loop()->items.size(), ">");
      return;
    case Value::Kind::kCallable:
      out->append(v.callable()->type == Callable::Type::kMacro
                      ? "<Macro>"
                      : "<built-in function>");
      return;
    default:
      return;
  }
}

}  // namespace

void AppendStr(const Value& v, std::string* out) {
  if (v.is_undefined()) return;
  if (!v.is_json()) {
    AppendObjectText(v, out);
    return;
  }
  if (v.is_string()) {
    out->append(v.str());
    return;
  }
  AppendJsonRepr(v.json(), out);
}

std::string ToStr(const Value& v) {
  if (v.is_string()) return v.str();
  std::string out;
  AppendStr(v, &out);
  return out;
}

void AppendRepr(const Value& v, std::string* out) {
  if (v.is_undefined()) return;
  if (!v.is_json()) {
    AppendObjectText(v, out);
    return;
  }
  AppendJsonRepr(v.json(), out);
}

namespace {

bool IsJsonNumber(const Json& j) { return j.is_number() || j.is_boolean(); }

double JsonAsDouble(const Json& j) {
  if (j.is_boolean()) return j.get<bool>() ? 1.0 : 0.0;
  return j.get<double>();
}

}  // namespace

bool JsonEquals(const Json& a, const Json& b) {
  if (IsJsonNumber(a) && IsJsonNumber(b)) {
    const bool a_float = a.is_number_float();
    const bool b_float = b.is_number_float();
    if (!a_float && !b_float) {
      // Exact integer comparison (bools are 0/1), including uint64.
      auto as_int128 = [](const Json& j) -> __int128 {
        if (j.is_boolean()) return j.get<bool>() ? 1 : 0;
        if (j.is_number_unsigned()) return j.get<uint64_t>();
        return j.get<int64_t>();
      };
      return as_int128(a) == as_int128(b);
    }
    return JsonAsDouble(a) == JsonAsDouble(b);
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::null:
      return true;
    case Json::value_t::string:
      return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    case Json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!JsonEquals(a[i], b[i])) return false;
      return true;
    }
    case Json::value_t::object: {
      if (a.size() != b.size()) return false;
      for (const auto& [key, value] : a.items()) {
        auto it = b.find(key);
        if (it == b.end() || !JsonEquals(value, *it)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

bool Equals(const Value& a, const Value& b) {
  if (a.is_json() && b.is_json()) return JsonEquals(a.json(), b.json());
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
      return true;
    case Value::Kind::kNamespace:
      return a.ns() == b.ns();
    case Value::Kind::kLoop:
      return a.loop() == b.loop();
    case Value::Kind::kCallable: {
      const Callable* x = a.callable();
      const Callable* y = b.callable();
      if (x == y) return true;
      if (x->type != y->type) return false;
      if (x->type == Callable::Type::kMacro) return x->macro == y->macro;
      if (x->type == Callable::Type::kGlobal) return x->global == y->global;
      return false;
    }
    default:
      return false;
  }
}

namespace {

void Measure(const Json& j, int depth, int limit, JsonMeasure* m) {
  ++m->nodes;
  if (j.is_string()) {
    m->bytes += static_cast<int64_t>(j.get_ref<const std::string&>().size());
    return;
  }
  if (!j.is_structured()) return;
  const int inner = depth + 1;
  m->depth = std::max(m->depth, inner);
  if (inner > limit) return;  // deep enough to reject; stop descending
  if (j.is_array()) {
    for (const Json& e : j) Measure(e, inner, limit, m);
  } else {
    for (const auto& [key, value] : j.items()) {
      m->bytes += static_cast<int64_t>(key.size());
      Measure(value, inner, limit, m);
    }
  }
}

}  // namespace

JsonMeasure MeasureJson(const Json& json, int limit) {
  JsonMeasure m;
  Measure(json, 0, limit, &m);
  return m;
}

}  // namespace lumen::chat::jinja
