#pragma once
// Value: what a template expression evaluates to. Data is one JSON type
// (nlohmann::ordered_json: objects keep insertion order, as Python dicts do);
// besides JSON a value may be jinja2's Undefined, a namespace(), a loop
// object or something callable (a macro, a global function, a bound string or
// dict method).
//
// JSON values are immutable and shared: indexing into `messages` aliases the
// caller's document instead of copying it. Lists and dicts hold JSON only, so
// no value can contain itself. Values belong to one render (one thread).

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace lumen::chat::jinja {

using Json = nlohmann::ordered_json;

struct MacroStmt;  // ast.h
struct Namespace;
struct LoopState;
struct Callable;

// Base of the non-JSON heap objects a Value can refer to.
struct Object {
  virtual ~Object() = default;
};

class Value {
 public:
  enum class Kind : uint8_t { kUndefined, kJson, kNamespace, kLoop, kCallable };

  Value() = default;  // Undefined without a name
  // Undefined that remembers why (for the error if it is used wrongly).
  static Value Undefined(std::string hint);
  // "'name' is undefined", sharing the string value `name` (no copy).
  static Value UndefinedName(const Value& name);
  // "'dict object' has no attribute 'name'" for `object`.name.
  static Value MissingAttribute(const Value& object, const Value& name);
  static Value FromJson(Json json);
  // A node inside a document kept alive by `owner` (no copy).
  static Value Borrowed(std::shared_ptr<const Json> owner, const Json* node);
  static Value String(std::string s);
  static Value Int(int64_t v);
  static Value Float(double v);
  static Value Bool(bool v);
  static Value None();
  static Value FromObject(Kind kind, std::shared_ptr<Object> object);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_json() const { return kind_ == Kind::kJson; }
  // The JSON value; only when is_json().
  const Json& json() const { return *json_; }
  // `node` (inside json()) as a Value sharing this value's document.
  Value Child(const Json& node) const { return Borrowed(json_, &node); }
  // Why this Undefined exists ("'x' is undefined"), may be empty. Built
  // only when asked (an error is being reported).
  std::string undefined_hint() const;

  // Python types of JSON values; all false for other kinds.
  bool is_none() const { return is_json() && json_->is_null(); }
  bool is_bool() const { return is_json() && json_->is_boolean(); }
  bool is_int() const;    // int, not bool
  bool is_float() const;  // float (and integers beyond int64)
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return is_json() && json_->is_string(); }
  bool is_list() const { return is_json() && json_->is_array(); }
  bool is_dict() const { return is_json() && json_->is_object(); }
  // Only when is_string().
  const std::string& str() const {
    return json_->get_ref<const std::string&>();
  }
  // Only when is_number(): bools are 0/1 as in Python.
  int64_t AsInt() const;
  double AsDouble() const;

  // The object of a kNamespace / kLoop / kCallable value, else nullptr.
  Namespace* ns() const;
  LoopState* loop() const;
  const Callable* callable() const;

 private:
  // kUndefined: how undefined_hint() reads json_ (a string).
  enum class Why : uint8_t { kNone, kHint, kName, kAttribute };

  Kind kind_ = Kind::kUndefined;
  Why why_ = Why::kNone;
  uint8_t owner_type_ = 0;            // kAttribute: TypeCode of the object
  std::shared_ptr<const Json> json_;  // kJson; kUndefined: hint or name
  std::shared_ptr<Object> object_;    // kNamespace, kLoop, kCallable
};

// jinja2's namespace(): the one mutable object (`{% set ns.x = ... %}`).
struct Namespace final : Object {
  std::vector<std::pair<std::string, Value>> attributes;  // insertion order
  const Value* Find(absl::string_view name) const;
  void Set(absl::string_view name, Value value);
};

// The `loop` variable of a for loop. Owns the items so that a loop object
// kept past its loop stays valid.
struct LoopState final : Object {
  std::vector<Value> items;  // [length], after the loop's `if` filter
  int64_t index0 = 0;
};

enum class GlobalFunction {
  kRange,
  kNamespace,
  kRaiseException,
  kStrftimeNow,
  kDict
};

// Methods templates may call; nothing else is reachable from a template.
enum class Method {
  // str
  kStrip,
  kLstrip,
  kRstrip,
  kSplit,
  kStartswith,
  kEndswith,
  kReplace,
  kLower,
  kUpper,
  kTitle,
  kCapitalize,
  kJoin,
  // dict
  kGet,
  kItems,
  kKeys,
  kValues,
  // loop
  kCycle,
};

struct Callable final : Object {
  enum class Type { kGlobal, kMethod, kMacro };
  Type type = Type::kGlobal;
  GlobalFunction global = GlobalFunction::kRange;
  Method method = Method::kStrip;
  Value receiver;                    // kMethod: the string, dict or loop
  const MacroStmt* macro = nullptr;  // kMacro; owned by the template
};

// Python semantics shared by the evaluator and the builtins.
bool Truthy(const Value& v);
// Python's type name ("str", "NoneType", ...), for error messages.
std::string TypeName(const Value& v);
// str(v) appended to `out`: None -> "None", True -> "True", lists and dicts
// as Python reprs, Undefined -> "".
void AppendStr(const Value& v, std::string* out);
std::string ToStr(const Value& v);
// repr(v) appended to `out`.
void AppendRepr(const Value& v, std::string* out);
// Python ==: numbers compare by value (True == 1), dicts ignore key order,
// Undefined equals Undefined only, other objects by identity.
bool Equals(const Value& a, const Value& b);
bool JsonEquals(const Json& a, const Json& b);

// Nesting depth of a JSON value (a scalar is 0), counting at most to
// `limit + 1`, and the number of nodes visited. Lists built by a template
// use it to keep every value shallow (bounded recursion everywhere).
struct JsonMeasure {
  int depth = 0;
  int64_t nodes = 0;
  int64_t bytes = 0;  // string bytes
};
JsonMeasure MeasureJson(const Json& json, int limit);

}  // namespace lumen::chat::jinja
