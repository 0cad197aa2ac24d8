// The tests (`x is name`) templates may use, with jinja2's semantics:
// Undefined counts as iterable and as a sequence, bools as numbers.

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chat/jinja/builtin_support.h"
#include "chat/jinja/builtins.h"
#include "chat/jinja/operators.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja {

namespace {

using TestFn = absl::StatusOr<bool> (*)(const Value&, const CallArgs&,
                                        BuiltinContext&);

absl::StatusOr<Value> OneArg(const CallArgs& args, absl::string_view test) {
  if (args.positional.size() != 1 || !args.keyword.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the '", test, "' test takes one argument"));
  }
  return args.positional[0];
}

absl::Status NoTestArgs(const CallArgs& args, absl::string_view test) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the '", test, "' test takes no arguments"));
  }
  return absl::OkStatus();
}

#define LUMEN_SIMPLE_TEST(Name, test_name, expr)                  \
  absl::StatusOr<bool> Name(const Value& v, const CallArgs& args, \
                            BuiltinContext&) {                    \
    RETURN_IF_ERROR(NoTestArgs(args, test_name));                 \
    return (expr);                                                \
  }

LUMEN_SIMPLE_TEST(Defined, "defined", !v.is_undefined())
LUMEN_SIMPLE_TEST(IsUndefined, "undefined", v.is_undefined())
LUMEN_SIMPLE_TEST(IsNone, "none", v.is_none())
LUMEN_SIMPLE_TEST(IsString, "string", v.is_string())
LUMEN_SIMPLE_TEST(IsMapping, "mapping", v.is_dict())
LUMEN_SIMPLE_TEST(IsIterable, "iterable",
                  v.is_undefined() || v.is_string() || v.is_list() ||
                      v.is_dict())
LUMEN_SIMPLE_TEST(IsSequence, "sequence",
                  v.is_undefined() || v.is_string() || v.is_list() ||
                      v.is_dict())
LUMEN_SIMPLE_TEST(IsNumber, "number", v.is_number())
LUMEN_SIMPLE_TEST(IsInteger, "integer", v.is_int())
LUMEN_SIMPLE_TEST(IsFloat, "float", v.is_float())
LUMEN_SIMPLE_TEST(IsBoolean, "boolean", v.is_bool())
LUMEN_SIMPLE_TEST(IsTrue, "true", v.is_bool() && v.json().get<bool>())
LUMEN_SIMPLE_TEST(IsFalse, "false", v.is_bool() && !v.json().get<bool>())
LUMEN_SIMPLE_TEST(IsCallable, "callable", v.callable() != nullptr)
LUMEN_SIMPLE_TEST(IsLower, "lower",
                  v.is_string() && PyLower(v.str()) == v.str())
LUMEN_SIMPLE_TEST(IsUpper, "upper",
                  v.is_string() && PyUpper(v.str()) == v.str())

#undef LUMEN_SIMPLE_TEST

template <CompareOp op>
absl::StatusOr<bool> CompareTest(const Value& v, const CallArgs& args,
                                 BuiltinContext&) {
  ASSIGN_OR_RETURN(Value other, OneArg(args, "comparison"));
  return ApplyCompare(op, v, other);
}

absl::StatusOr<bool> In(const Value& v, const CallArgs& args, BuiltinContext&) {
  ASSIGN_OR_RETURN(Value container, OneArg(args, "in"));
  return Contains(container, v);
}

absl::StatusOr<bool> SameAs(const Value& v, const CallArgs& args,
                            BuiltinContext&) {
  ASSIGN_OR_RETURN(Value other, OneArg(args, "sameas"));
  // Python's `is`: scalars of one type compare by value (CPython shares
  // None, bools, small ints and interned strings), containers by identity.
  if (v.is_json() && other.is_json()) {
    if (v.json().is_structured() || other.json().is_structured()) {
      return &v.json() == &other.json();
    }
    return TypeName(v) == TypeName(other) && Equals(v, other);
  }
  return v.kind() == other.kind() && Equals(v, other);
}

absl::StatusOr<int64_t> IntegerSubject(const Value& v, absl::string_view test) {
  if (!v.is_int() && !v.is_bool()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the '", test, "' test needs an integer, got '", TypeName(v), "'"));
  }
  return v.AsInt();
}

absl::StatusOr<bool> Odd(const Value& v, const CallArgs& args,
                         BuiltinContext&) {
  RETURN_IF_ERROR(NoTestArgs(args, "odd"));
  ASSIGN_OR_RETURN(int64_t i, IntegerSubject(v, "odd"));
  return i % 2 != 0;
}

absl::StatusOr<bool> Even(const Value& v, const CallArgs& args,
                          BuiltinContext&) {
  RETURN_IF_ERROR(NoTestArgs(args, "even"));
  ASSIGN_OR_RETURN(int64_t i, IntegerSubject(v, "even"));
  return i % 2 == 0;
}

absl::StatusOr<bool> DivisibleBy(const Value& v, const CallArgs& args,
                                 BuiltinContext&) {
  ASSIGN_OR_RETURN(Value divisor, OneArg(args, "divisibleby"));
  ASSIGN_OR_RETURN(int64_t i, IntegerSubject(v, "divisibleby"));
  ASSIGN_OR_RETURN(int64_t d, IntegerSubject(divisor, "divisibleby"));
  if (d == 0) return absl::InvalidArgumentError("division by zero");
  if (d == -1) return true;
  return i % d == 0;
}

struct TestEntry {
  absl::string_view name;
  TestFn fn;
};

constexpr TestEntry kTests[] = {
    {"!=", CompareTest<CompareOp::kNe>},
    {"<", CompareTest<CompareOp::kLt>},
    {"<=", CompareTest<CompareOp::kLe>},
    {"==", CompareTest<CompareOp::kEq>},
    {">", CompareTest<CompareOp::kGt>},
    {">=", CompareTest<CompareOp::kGe>},
    {"boolean", IsBoolean},
    {"callable", IsCallable},
    {"defined", Defined},
    {"divisibleby", DivisibleBy},
    {"eq", CompareTest<CompareOp::kEq>},
    {"equalto", CompareTest<CompareOp::kEq>},
    {"even", Even},
    {"false", IsFalse},
    {"float", IsFloat},
    {"ge", CompareTest<CompareOp::kGe>},
    {"greaterthan", CompareTest<CompareOp::kGt>},
    {"gt", CompareTest<CompareOp::kGt>},
    {"in", In},
    {"integer", IsInteger},
    {"iterable", IsIterable},
    {"le", CompareTest<CompareOp::kLe>},
    {"lessthan", CompareTest<CompareOp::kLt>},
    {"lower", IsLower},
    {"lt", CompareTest<CompareOp::kLt>},
    {"mapping", IsMapping},
    {"ne", CompareTest<CompareOp::kNe>},
    {"none", IsNone},
    {"number", IsNumber},
    {"odd", Odd},
    {"sameas", SameAs},
    {"sequence", IsSequence},
    {"string", IsString},
    {"true", IsTrue},
    {"undefined", IsUndefined},
    {"upper", IsUpper},
};

}  // namespace

int FindTest(absl::string_view name) {
  for (size_t i = 0; i < std::size(kTests); ++i)
    if (kTests[i].name == name) return static_cast<int>(i);
  return -1;
}

absl::StatusOr<bool> ApplyTest(int test, const Value& subject,
                               const CallArgs& args, BuiltinContext& ctx) {
  if (test < 0 || test >= static_cast<int>(std::size(kTests))) {
    return absl::InternalError("bad test index");
  }
  return kTests[test].fn(subject, args, ctx);
}

}  // namespace lumen::chat::jinja
