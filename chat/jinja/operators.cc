#include "chat/jinja/operators.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja {

absl::Status UndefinedError(const Value& undefined) {
  const std::string hint = undefined.undefined_hint();
  return absl::InvalidArgumentError(hint.empty() ? "a value is undefined"
                                                 : std::string(hint));
}

namespace {

absl::string_view OpSymbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kFloorDiv:
      return "//";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kPow:
      return "**";
  }
  return "?";
}

absl::Status TypeError(BinaryOp op, const Value& a, const Value& b) {
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported operand types for ", OpSymbol(op), ": '",
                   TypeName(a), "' and '", TypeName(b), "'"));
}

absl::Status Overflow() {
  return absl::InvalidArgumentError("integer overflow (beyond 64 bits)");
}

absl::Status ZeroDivision() {
  return absl::InvalidArgumentError("division by zero");
}

absl::StatusOr<Value> IntArithmetic(BinaryOp op, int64_t x, int64_t y) {
  int64_t r = 0;
  switch (op) {
    case BinaryOp::kAdd:
      if (__builtin_add_overflow(x, y, &r)) return Overflow();
      return Value::Int(r);
    case BinaryOp::kSub:
      if (__builtin_sub_overflow(x, y, &r)) return Overflow();
      return Value::Int(r);
    case BinaryOp::kMul:
      if (__builtin_mul_overflow(x, y, &r)) return Overflow();
      return Value::Int(r);
    case BinaryOp::kDiv:
      if (y == 0) return ZeroDivision();
      return Value::Float(static_cast<double>(x) / static_cast<double>(y));
    case BinaryOp::kFloorDiv: {
      if (y == 0) return ZeroDivision();
      if (x == std::numeric_limits<int64_t>::min() && y == -1)
        return Overflow();
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return Value::Int(q);
    }
    case BinaryOp::kMod: {
      if (y == 0) return ZeroDivision();
      if (y == -1) return Value::Int(0);
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::Int(m);
    }
    case BinaryOp::kPow: {
      if (y < 0) {
        if (x == 0) return ZeroDivision();
        return Value::Float(
            std::pow(static_cast<double>(x), static_cast<double>(y)));
      }
      int64_t result = 1;
      int64_t base = x;
      int64_t e = y;
      while (e > 0) {
        if (e & 1) {
          if (__builtin_mul_overflow(result, base, &result)) return Overflow();
        }
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) {
          return Overflow();
        }
      }
      return Value::Int(result);
    }
  }
  return absl::InternalError("unknown operator");
}

absl::StatusOr<Value> FloatArithmetic(BinaryOp op, double x, double y) {
  switch (op) {
    case BinaryOp::kAdd:
      return Value::Float(x + y);
    case BinaryOp::kSub:
      return Value::Float(x - y);
    case BinaryOp::kMul:
      return Value::Float(x * y);
    case BinaryOp::kDiv:
      if (y == 0) return ZeroDivision();
      return Value::Float(x / y);
    case BinaryOp::kFloorDiv:
      if (y == 0) return ZeroDivision();
      return Value::Float(std::floor(x / y));
    case BinaryOp::kMod: {
      if (y == 0) return ZeroDivision();
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::Float(m);
    }
    case BinaryOp::kPow: {
      if (x == 0 && y < 0) return ZeroDivision();
      const double r = std::pow(x, y);
      if (std::isnan(r) && !std::isnan(x) && !std::isnan(y)) {
        return absl::InvalidArgumentError(
            "a negative number to a fractional power is complex");
      }
      return Value::Float(r);
    }
  }
  return absl::InternalError("unknown operator");
}

// s * n or list * n.
absl::StatusOr<Value> Repeat(const Value& sequence, int64_t n,
                             BuiltinContext& ctx) {
  if (n < 0) n = 0;
  const Limits& limits = ctx.options().limits;
  if (sequence.is_string()) {
    const std::string& s = sequence.str();
    if (!s.empty() &&
        n > limits.max_output_bytes / static_cast<int64_t>(s.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "string repetition longer than ", limits.max_output_bytes, " bytes"));
    }
    const int64_t bytes = n * static_cast<int64_t>(s.size());
    if (absl::Status st = ctx.Charge(bytes); !st.ok()) return st;
    std::string out;
    out.reserve(bytes);
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value::String(std::move(out));
  }
  const Json& list = sequence.json();
  const JsonMeasure m = MeasureJson(list, limits.max_value_depth);
  if (m.nodes > 0 && n > limits.max_work / m.nodes) {
    return absl::InvalidArgumentError("list repetition too large");
  }
  if (absl::Status st = ctx.Charge(n * m.nodes); !st.ok()) return st;
  Json out = Json::array();
  for (int64_t i = 0; i < n; ++i)
    for (const Json& e : list) out.push_back(e);
  return Value::FromJson(std::move(out));
}

}  // namespace

absl::StatusOr<Value> ApplyBinary(BinaryOp op, const Value& a, const Value& b,
                                  BuiltinContext& ctx) {
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float()) {
      return IntArithmetic(op, a.AsInt(), b.AsInt());
    }
    return FloatArithmetic(op, a.AsDouble(), b.AsDouble());
  }
  if (op == BinaryOp::kAdd) {
    if (a.is_string() && b.is_string()) {
      const int64_t bytes =
          static_cast<int64_t>(a.str().size() + b.str().size());
      if (bytes > ctx.options().limits.max_output_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("string longer than ",
                         ctx.options().limits.max_output_bytes, " bytes"));
      }
      if (absl::Status s = ctx.Charge(bytes); !s.ok()) return s;
      std::string out;
      out.reserve(bytes);
      out += a.str();
      out += b.str();
      return Value::String(std::move(out));
    }
    if (a.is_list() && b.is_list()) {
      Json out = a.json();
      for (const Json& e : b.json()) out.push_back(e);
      if (absl::Status s = CheckNewValue(out, ctx); !s.ok()) return s;
      return Value::FromJson(std::move(out));
    }
  }
  if (op == BinaryOp::kMul) {
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) {
      return Repeat(a, b.AsInt(), ctx);
    }
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) {
      return Repeat(b, a.AsInt(), ctx);
    }
  }
  if (op == BinaryOp::kMod && a.is_string()) {
    return absl::InvalidArgumentError(
        "printf-style string formatting (str % value) is not supported");
  }
  return TypeError(op, a, b);
}

absl::StatusOr<Value> ApplyUnary(ExprKind kind, const Value& v) {
  if (v.is_undefined()) return UndefinedError(v);
  if (!v.is_number()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad operand type for unary ", kind == ExprKind::kNegate ? "-" : "+",
        ": '", TypeName(v), "'"));
  }
  if (kind == ExprKind::kPlus) {
    return v.is_bool() ? Value::Int(v.AsInt()) : v;
  }
  if (v.is_float()) return Value::Float(-v.AsDouble());
  const int64_t i = v.AsInt();
  if (i == std::numeric_limits<int64_t>::min()) return Overflow();
  return Value::Int(-i);
}

namespace {

// <0, 0, >0 for a and b of an ordered type, or an error.
absl::StatusOr<int> Order(const Json& a, const Json& b, absl::string_view op) {
  const bool a_num = a.is_number() || a.is_boolean();
  const bool b_num = b.is_number() || b.is_boolean();
  if (a_num && b_num) {
    if (!a.is_number_float() && !b.is_number_float()) {
      auto as_int128 = [](const Json& j) -> __int128 {
        if (j.is_boolean()) return j.get<bool>() ? 1 : 0;
        if (j.is_number_unsigned()) return j.get<uint64_t>();
        return j.get<int64_t>();
      };
      const __int128 x = as_int128(a), y = as_int128(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    auto as_double = [](const Json& j) {
      return j.is_boolean() ? (j.get<bool>() ? 1.0 : 0.0) : j.get<double>();
    };
    const double x = as_double(a), y = as_double(b);
    if (std::isnan(x) || std::isnan(y)) return 2;  // unordered: all false
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.get_ref<const std::string&>().compare(
        b.get_ref<const std::string&>());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_array() && b.is_array()) {
    const size_t n = std::min(a.size(), b.size());
    for (size_t i = 0; i < n; ++i) {
      if (JsonEquals(a[i], b[i])) continue;
      return Order(a[i], b[i], op);
    }
    return a.size() < b.size() ? -1 : a.size() > b.size() ? 1 : 0;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", op, "' not supported between these types"));
}

}  // namespace

absl::StatusOr<bool> ApplyCompare(CompareOp op, const Value& a,
                                  const Value& b) {
  switch (op) {
    case CompareOp::kEq:
      return Equals(a, b);
    case CompareOp::kNe:
      return !Equals(a, b);
    case CompareOp::kIn:
      return Contains(b, a);
    case CompareOp::kNotIn: {
      absl::StatusOr<bool> in = Contains(b, a);
      if (!in.ok()) return in.status();
      return !*in;
    }
    default:
      break;
  }
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  const absl::string_view symbol = op == CompareOp::kLt   ? "<"
                                   : op == CompareOp::kLe ? "<="
                                   : op == CompareOp::kGt ? ">"
                                                          : ">=";
  if (!a.is_json() || !b.is_json()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", symbol, "' not supported between instances of '",
                     TypeName(a), "' and '", TypeName(b), "'"));
  }
  absl::StatusOr<int> order = Order(a.json(), b.json(), symbol);
  if (!order.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", symbol, "' not supported between instances of '",
                     TypeName(a), "' and '", TypeName(b), "'"));
  }
  const int c = *order;
  if (c == 2) return false;  // NaN
  switch (op) {
    case CompareOp::kLt:
      return c < 0;
    case CompareOp::kLe:
      return c <= 0;
    case CompareOp::kGt:
      return c > 0;
    default:
      return c >= 0;
  }
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  if (container.is_undefined()) return false;  // Undefined iterates as empty
  if (container.is_string()) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'in <string>' requires string as left operand, not ",
                       TypeName(item)));
    }
    return FindBytes(container.str(), item.str()) != absl::string_view::npos;
  }
  if (container.is_list()) {
    for (const Json& e : container.json()) {
      if (item.is_json() && JsonEquals(e, item.json())) return true;
    }
    return false;
  }
  if (container.is_dict()) {
    if (!item.is_string()) return false;
    return container.json().contains(item.str());
  }
  if (const Namespace* ns = container.ns(); ns != nullptr) {
    return absl::InvalidArgumentError(
        "argument of type 'Namespace' is not iterable");
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "argument of type '", TypeName(container), "' is not iterable"));
}

}  // namespace lumen::chat::jinja
