#include "chat/jinja/evaluator.h"

#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chat/jinja/access.h"
#include "chat/jinja/builtin_support.h"
#include "chat/jinja/builtins.h"
#include "chat/jinja/operators.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja {

namespace {

constexpr absl::string_view kLoop = "loop";

// Variables of one scope. Names view strings that outlive the render (the
// syntax tree, the caller's variables, literals).
class Scope {
 public:
  explicit Scope(const Scope* parent) : parent_(parent) {}

  const Value* Find(absl::string_view name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent_) {
      for (const auto& [key, value] : s->vars_)
        if (key == name) return &value;
    }
    return nullptr;
  }

  void Set(absl::string_view name, Value value) {
    for (auto& [key, v] : vars_) {
      if (key == name) {
        v = std::move(value);
        return;
      }
    }
    vars_.emplace_back(name, std::move(value));
  }

 private:
  const Scope* parent_;
  absl::InlinedVector<std::pair<absl::string_view, Value>, 4> vars_;
};

absl::Status Positioned(SourcePos pos, const absl::Status& s) {
  if (s.ok() || IsRaisedError(s)) return s;
  return absl::Status(s.code(),
                      absl::StrCat(FormatPos(pos), ": ", s.message()));
}

template <typename T>
absl::StatusOr<T> At(SourcePos pos, absl::StatusOr<T> r) {
  if (!r.ok()) return Positioned(pos, r.status());
  return r;
}

Value MakeCallable(std::shared_ptr<Callable> c) {
  return Value::FromObject(Value::Kind::kCallable, std::move(c));
}

class Renderer final : public BuiltinContext {
 public:
  explicit Renderer(const RenderOptions& options) : options_(options) {
    if (options_.now == absl::InfinitePast()) options_.now = absl::Now();
    for (const auto& [name, function] : GlobalFunctions()) {
      auto c = std::make_shared<Callable>();
      c->type = Callable::Type::kGlobal;
      c->global = function;
      globals_.emplace_back(name, MakeCallable(std::move(c)));
    }
  }

  absl::StatusOr<std::string> Run(const StmtList& program,
                                  Variables variables) {
    Scope root(nullptr);
    for (const auto& [name, json] : variables) {
      // The deepest input nesting + 1 (a scalar is 0) must fit the limit.
      if (MeasureJson(*json, limits().max_value_depth).depth >
          limits().max_value_depth) {
        return absl::InvalidArgumentError(
            absl::StrCat("template variables nested deeper than ",
                         limits().max_value_depth, " levels"));
      }
      // Borrowed without ownership: no value outlives this call.
      root.Set(name, Value::Borrowed(std::shared_ptr<const Json>(), json));
    }
    root_ = &root;
    std::string out;
    ASSIGN_OR_RETURN(Flow flow, ExecList(program, root, out));
    (void)flow;
    root_ = nullptr;
    return out;
  }

  // BuiltinContext
  absl::Status Charge(int64_t units) override {
    work_ += units;
    if (work_ > limits().max_work) {
      return absl::InvalidArgumentError(
          absl::StrCat("template exceeded its work limit of ",
                       limits().max_work, " units (runaway loop?)"));
    }
    return absl::OkStatus();
  }
  const RenderOptions& options() const override { return options_; }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  const Limits& limits() const { return options_.limits; }

  absl::Status Append(absl::string_view text, std::string& out) {
    if (static_cast<int64_t>(out.size() + text.size()) >
        limits().max_output_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rendering longer than ", limits().max_output_bytes, " bytes"));
    }
    RETURN_IF_ERROR(Charge(static_cast<int64_t>(text.size())));
    absl::StrAppend(&out, text);
    return absl::OkStatus();
  }

  absl::Status CountIteration(SourcePos pos) {
    if (++iterations_ > limits().max_loop_iterations) {
      return absl::InvalidArgumentError(
          absl::StrCat(FormatPos(pos), ": loops ran more than ",
                       limits().max_loop_iterations, " iterations"));
    }
    return absl::OkStatus();
  }

  // ---- statements ----

  absl::StatusOr<Flow> ExecList(const StmtList& body, Scope& scope,
                                std::string& out) {
    for (const StmtPtr& s : body) {
      ASSIGN_OR_RETURN(Flow flow, Exec(*s, scope, out));
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  absl::StatusOr<Flow> Exec(const Stmt& s, Scope& scope, std::string& out) {
    switch (s.kind) {
      case StmtKind::kText:
        RETURN_IF_ERROR(Positioned(
            s.pos, Append(static_cast<const TextStmt&>(s).text, out)));
        return Flow::kNormal;
      case StmtKind::kOutput: {
        ASSIGN_OR_RETURN(Value v,
                         Eval(*static_cast<const OutputStmt&>(s).expr, scope));
        if (v.is_string()) {
          RETURN_IF_ERROR(Positioned(s.pos, Append(v.str(), out)));
        } else {
          RETURN_IF_ERROR(Positioned(s.pos, Append(ToStr(v), out)));
        }
        return Flow::kNormal;
      }
      case StmtKind::kIf: {
        const auto& node = static_cast<const IfStmt&>(s);
        for (const auto& [test, body] : node.branches) {
          ASSIGN_OR_RETURN(Value v, Eval(*test, scope));
          if (Truthy(v)) return ExecList(body, scope, out);
        }
        return ExecList(node.else_body, scope, out);
      }
      case StmtKind::kFor:
        RETURN_IF_ERROR(ExecFor(static_cast<const ForStmt&>(s), scope, out));
        return Flow::kNormal;
      case StmtKind::kSet: {
        const auto& node = static_cast<const SetStmt&>(s);
        ASSIGN_OR_RETURN(Value v, Eval(*node.value, scope));
        RETURN_IF_ERROR(Assign(node.target, std::move(v), scope, s.pos));
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        const auto& node = static_cast<const SetBlockStmt&>(s);
        ASSIGN_OR_RETURN(Value v,
                         RenderBlock(node.body, node.filter.get(), scope));
        RETURN_IF_ERROR(Assign(node.target, std::move(v), scope, s.pos));
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        const auto& node = static_cast<const FilterBlockStmt&>(s);
        ASSIGN_OR_RETURN(Value v,
                         RenderBlock(node.body, node.filter.get(), scope));
        RETURN_IF_ERROR(Positioned(s.pos, Append(ToStr(v), out)));
        return Flow::kNormal;
      }
      case StmtKind::kMacro: {
        const auto& node = static_cast<const MacroStmt&>(s);
        auto c = std::make_shared<Callable>();
        c->type = Callable::Type::kMacro;
        c->macro = &node;
        scope.Set(node.name, MakeCallable(std::move(c)));
        return Flow::kNormal;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
    }
    return absl::InternalError("unknown statement");
  }

  // The body rendered in its own scope, through `filter` if there is one.
  absl::StatusOr<Value> RenderBlock(const StmtList& body, const Expr* filter,
                                    Scope& scope) {
    Scope inner(&scope);
    std::string text;
    ASSIGN_OR_RETURN(Flow flow, ExecList(body, inner, text));
    (void)flow;
    Value v = Value::String(std::move(text));
    if (filter == nullptr) return v;
    const Value* saved = block_subject_;
    block_subject_ = &v;
    absl::StatusOr<Value> filtered = Eval(*filter, scope);
    block_subject_ = saved;
    return filtered;
  }

  absl::Status Assign(const AssignTarget& target, Value value, Scope& scope,
                      SourcePos pos) {
    if (!target.ns_attribute.empty()) {
      const Value* holder = scope.Find(target.names[0]);
      Namespace* ns = holder == nullptr ? nullptr : holder->ns();
      if (ns == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            FormatPos(pos), ": cannot assign attribute on non-namespace '",
            target.names[0], "'"));
      }
      if (value.kind() == Value::Kind::kNamespace) {
        return absl::InvalidArgumentError(absl::StrCat(
            FormatPos(pos), ": a namespace cannot be stored in a namespace"));
      }
      ns->Set(target.ns_attribute, std::move(value));
      return absl::OkStatus();
    }
    if (!target.unpack) {
      scope.Set(target.names[0], std::move(value));
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::vector<Value> parts,
                     At(pos, Unpack(value, target.names.size())));
    for (size_t i = 0; i < parts.size(); ++i)
      scope.Set(target.names[i], std::move(parts[i]));
    return absl::OkStatus();
  }

  absl::Status BindTarget(const AssignTarget& target, const Value& item,
                          Scope& scope, SourcePos pos) {
    if (!target.unpack) {
      scope.Set(target.names[0], item);
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::vector<Value> parts,
                     At(pos, Unpack(item, target.names.size())));
    for (size_t i = 0; i < parts.size(); ++i)
      scope.Set(target.names[i], std::move(parts[i]));
    return absl::OkStatus();
  }

  absl::Status ExecFor(const ForStmt& node, Scope& scope, std::string& out) {
    ASSIGN_OR_RETURN(Value iterable, Eval(*node.iterable, scope));
    ASSIGN_OR_RETURN(std::vector<Value> items,
                     At(node.iterable->pos, IterateValue(iterable, "for")));
    auto loop = std::make_shared<LoopState>();
    if (node.filter != nullptr) {
      for (Value& item : items) {
        RETURN_IF_ERROR(CountIteration(node.pos));
        Scope probe(&scope);
        RETURN_IF_ERROR(BindTarget(node.target, item, probe, node.pos));
        ASSIGN_OR_RETURN(Value keep, Eval(*node.filter, probe));
        if (Truthy(keep)) loop->items.push_back(std::move(item));
      }
    } else {
      loop->items = std::move(items);
    }
    if (loop->items.empty()) {
      Scope inner(&scope);
      ASSIGN_OR_RETURN(Flow flow, ExecList(node.else_body, inner, out));
      (void)flow;
      return absl::OkStatus();
    }
    const Value loop_value = Value::FromObject(Value::Kind::kLoop, loop);
    const size_t n = loop->items.size();
    for (size_t i = 0; i < n; ++i) {
      RETURN_IF_ERROR(CountIteration(node.pos));
      loop->index0 = static_cast<int64_t>(i);
      Scope iteration(&scope);
      iteration.Set(kLoop, loop_value);
      RETURN_IF_ERROR(
          BindTarget(node.target, loop->items[i], iteration, node.pos));
      ASSIGN_OR_RETURN(Flow flow, ExecList(node.body, iteration, out));
      if (flow == Flow::kBreak) break;
    }
    return absl::OkStatus();
  }

  // ---- expressions ----

  absl::StatusOr<Value> Eval(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case ExprKind::kLiteral:
        return e.literal;
      case ExprKind::kName:
        return Lookup(e, scope);
      case ExprKind::kList:
      case ExprKind::kTuple:
        return MakeList(e, scope);
      case ExprKind::kDict:
        return MakeDict(e, scope);
      case ExprKind::kGetAttr: {
        ASSIGN_OR_RETURN(Value object, Eval(*e.args[0], scope));
        return At(e.pos, GetAttribute(object, e.name, e.name_value));
      }
      case ExprKind::kGetItem: {
        ASSIGN_OR_RETURN(Value object, Eval(*e.args[0], scope));
        ASSIGN_OR_RETURN(Value key, Eval(*e.args[1], scope));
        return At(e.pos, GetItem(object, key));
      }
      case ExprKind::kSlice:
        return EvalSlice(e, scope);
      case ExprKind::kCall:
        return EvalCall(e, scope);
      case ExprKind::kFilter:
        return EvalFilter(e, scope);
      case ExprKind::kTest: {
        ASSIGN_OR_RETURN(Value subject, Eval(*e.args[0], scope));
        ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
        ASSIGN_OR_RETURN(bool result,
                         At(e.pos, ApplyTest(e.builtin, subject, args, *this)));
        return Value::Bool(result != e.negated);
      }
      case ExprKind::kNot: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.args[0], scope));
        return Value::Bool(!Truthy(v));
      }
      case ExprKind::kNegate:
      case ExprKind::kPlus: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.args[0], scope));
        return At(e.pos, ApplyUnary(e.kind, v));
      }
      case ExprKind::kBinary: {
        if (e.op == BinaryOp::kAdd) return EvalAddChain(e, scope);
        ASSIGN_OR_RETURN(Value a, Eval(*e.args[0], scope));
        ASSIGN_OR_RETURN(Value b, Eval(*e.args[1], scope));
        return At(e.pos, ApplyBinary(e.op, a, b, *this));
      }
      case ExprKind::kAnd: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.args[0], scope));
        if (!Truthy(a)) return a;
        return Eval(*e.args[1], scope);
      }
      case ExprKind::kOr: {
        ASSIGN_OR_RETURN(Value a, Eval(*e.args[0], scope));
        if (Truthy(a)) return a;
        return Eval(*e.args[1], scope);
      }
      case ExprKind::kConcat: {
        std::string s;
        for (const ExprPtr& part : e.args) {
          ASSIGN_OR_RETURN(Value v, Eval(*part, scope));
          AppendStr(v, &s);
          if (static_cast<int64_t>(s.size()) > limits().max_output_bytes) {
            return absl::InvalidArgumentError(
                absl::StrCat(FormatPos(e.pos), ": string longer than ",
                             limits().max_output_bytes, " bytes"));
          }
        }
        RETURN_IF_ERROR(
            Positioned(e.pos, Charge(static_cast<int64_t>(s.size()))));
        return Value::String(std::move(s));
      }
      case ExprKind::kCompare: {
        ASSIGN_OR_RETURN(Value left, Eval(*e.args[0], scope));
        for (size_t i = 0; i < e.compare_ops.size(); ++i) {
          ASSIGN_OR_RETURN(Value right, Eval(*e.args[i + 1], scope));
          ASSIGN_OR_RETURN(bool holds, At(e.pos, ApplyCompare(e.compare_ops[i],
                                                              left, right)));
          if (!holds) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case ExprKind::kCondition: {
        ASSIGN_OR_RETURN(Value condition, Eval(*e.args[1], scope));
        if (Truthy(condition)) return Eval(*e.args[0], scope);
        if (e.args[2] != nullptr) return Eval(*e.args[2], scope);
        return Value::Undefined(
            "the inline if-expression evaluated to false and has no else");
      }
    }
    return absl::InternalError("unknown expression");
  }

  // a + b + c + ...: strings are joined once instead of pairwise (chat
  // templates build every turn this way). Evaluation order and the result,
  // errors included, are those of the pairwise left-to-right evaluation.
  absl::StatusOr<Value> EvalAddChain(const Expr& e, Scope& scope) {
    absl::InlinedVector<const Expr*, 8> sums;  // the + nodes, innermost last
    const Expr* node = &e;
    while (node->kind == ExprKind::kBinary && node->op == BinaryOp::kAdd) {
      sums.push_back(node);
      node = node->args[0].get();
    }
    ASSIGN_OR_RETURN(Value acc, Eval(*node, scope));
    std::string text;
    bool joining = false;  // acc's value is in `text`
    for (size_t i = sums.size(); i-- > 0;) {
      const Expr& sum = *sums[i];
      ASSIGN_OR_RETURN(Value next, Eval(*sum.args[1], scope));
      if ((joining || acc.is_string()) && next.is_string()) {
        if (!joining) {
          text = acc.str();
          joining = true;
        }
        if (static_cast<int64_t>(text.size() + next.str().size()) >
            limits().max_output_bytes) {
          return absl::InvalidArgumentError(
              absl::StrCat(FormatPos(sum.pos), ": string longer than ",
                           limits().max_output_bytes, " bytes"));
        }
        text += next.str();
        continue;
      }
      if (joining) {
        RETURN_IF_ERROR(
            Positioned(sum.pos, Charge(static_cast<int64_t>(text.size()))));
        acc = Value::String(std::move(text));
        joining = false;
      }
      ASSIGN_OR_RETURN(
          acc, At(sum.pos, ApplyBinary(BinaryOp::kAdd, acc, next, *this)));
    }
    if (!joining) return acc;
    RETURN_IF_ERROR(
        Positioned(e.pos, Charge(static_cast<int64_t>(text.size()))));
    return Value::String(std::move(text));
  }

  Value Lookup(const Expr& e, const Scope& scope) const {
    if (const Value* v = scope.Find(e.name); v != nullptr) return *v;
    for (const auto& [global_name, value] : globals_)
      if (global_name == e.name) return value;
    return Value::UndefinedName(e.name_value);
  }

  // Positional arguments from e.args[first..] and all keyword arguments.
  absl::StatusOr<CallArgs> EvalArgs(const Expr& e, size_t first, Scope& scope) {
    CallArgs args;
    args.positional.reserve(e.args.size() - first);
    for (size_t i = first; i < e.args.size(); ++i) {
      ASSIGN_OR_RETURN(Value v, Eval(*e.args[i], scope));
      args.positional.push_back(std::move(v));
    }
    for (const auto& [key, expr] : e.kwargs) {
      ASSIGN_OR_RETURN(Value v, Eval(*expr, scope));
      args.keyword.emplace_back(key, std::move(v));
    }
    return args;
  }

  absl::StatusOr<Value> MakeList(const Expr& e, Scope& scope) {
    Json list = Json::array();
    for (const ExprPtr& item : e.args) {
      ASSIGN_OR_RETURN(Value v, Eval(*item, scope));
      if (!v.is_json()) {
        return absl::InvalidArgumentError(absl::StrCat(
            FormatPos(item->pos), ": a list can hold only plain values, not ",
            v.is_undefined() ? (v.undefined_hint().empty()
                                    ? std::string("an undefined value")
                                    : v.undefined_hint())
                             : TypeName(v)));
      }
      list.push_back(v.json());
    }
    RETURN_IF_ERROR(Positioned(e.pos, CheckNewValue(list, *this)));
    return Value::FromJson(std::move(list));
  }

  absl::StatusOr<Value> MakeDict(const Expr& e, Scope& scope) {
    Json dict = Json::object();
    for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
      ASSIGN_OR_RETURN(Value key, Eval(*e.args[i], scope));
      ASSIGN_OR_RETURN(Value value, Eval(*e.args[i + 1], scope));
      if (!key.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(FormatPos(e.args[i]->pos),
                         ": dict keys must be strings, not ", TypeName(key)));
      }
      if (!value.is_json()) {
        return absl::InvalidArgumentError(absl::StrCat(
            FormatPos(e.args[i + 1]->pos),
            ": a dict can hold only plain values, not ", TypeName(value)));
      }
      dict[key.str()] = value.json();
    }
    RETURN_IF_ERROR(Positioned(e.pos, CheckNewValue(dict, *this)));
    return Value::FromJson(std::move(dict));
  }

  absl::StatusOr<Value> EvalSlice(const Expr& e, Scope& scope) {
    ASSIGN_OR_RETURN(Value object, Eval(*e.args[0], scope));
    std::optional<int64_t> parts[3];
    for (int i = 0; i < 3; ++i) {
      if (e.args[i + 1] == nullptr) continue;
      ASSIGN_OR_RETURN(Value v, Eval(*e.args[i + 1], scope));
      if (v.is_none() || v.is_undefined()) continue;
      if (!v.is_int() && !v.is_bool()) {
        return absl::InvalidArgumentError(absl::StrCat(
            FormatPos(e.pos), ": slice indices must be integers or None"));
      }
      parts[i] = v.AsInt();
    }
    return At(e.pos, SliceValue(object, parts[0], parts[1], parts[2], *this));
  }

  absl::StatusOr<Value> EvalCall(const Expr& e, Scope& scope) {
    const Expr& callee = *e.args[0];
    Value function;
    if (callee.kind == ExprKind::kGetAttr) {
      // obj.method(...): call the method without materializing it.
      ASSIGN_OR_RETURN(Value object, Eval(*callee.args[0], scope));
      if (object.is_string() || object.is_dict() || object.loop() != nullptr) {
        if (std::optional<Method> m = FindMethod(object, callee.name)) {
          ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
          return At(e.pos, CallMethod(*m, object, args, *this));
        }
      }
      ASSIGN_OR_RETURN(
          function,
          At(callee.pos, GetAttribute(object, callee.name, callee.name_value)));
    } else {
      ASSIGN_OR_RETURN(function, Eval(callee, scope));
    }
    ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
    const Callable* c = function.callable();
    if (c == nullptr) {
      if (function.is_undefined()) {
        return Positioned(e.pos, UndefinedError(function));
      }
      return absl::InvalidArgumentError(
          absl::StrCat(FormatPos(e.pos), ": '", TypeName(function),
                       "' object is not callable"));
    }
    switch (c->type) {
      case Callable::Type::kGlobal:
        return At(e.pos, CallGlobal(c->global, args, *this));
      case Callable::Type::kMethod:
        return At(e.pos, CallMethod(c->method, c->receiver, args, *this));
      case Callable::Type::kMacro:
        return CallMacro(*c->macro, args, e.pos);
    }
    return absl::InternalError("unknown callable");
  }

  absl::StatusOr<Value> CallMacro(const MacroStmt& macro, const CallArgs& args,
                                  SourcePos pos) {
    if (args.positional.size() > macro.params.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          FormatPos(pos), ": macro '", macro.name, "' takes not more than ",
          macro.params.size(), " argument(s)"));
    }
    if (call_depth_ >= limits().max_call_depth) {
      return absl::InvalidArgumentError(absl::StrCat(
          FormatPos(pos), ": macro calls nested deeper than ",
          limits().max_call_depth, " levels (runaway recursion?)"));
    }
    Scope scope(root_);
    std::vector<bool> bound(macro.params.size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
      scope.Set(macro.params[i].first, args.positional[i]);
      bound[i] = true;
    }
    for (const auto& [key, value] : args.keyword) {
      size_t i = 0;
      while (i < macro.params.size() && macro.params[i].first != key) ++i;
      if (i == macro.params.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat(FormatPos(pos), ": macro '", macro.name,
                         "' takes no keyword argument '", key, "'"));
      }
      if (bound[i]) {
        return absl::InvalidArgumentError(
            absl::StrCat(FormatPos(pos), ": macro '", macro.name,
                         "' got multiple values for argument '", key, "'"));
      }
      scope.Set(macro.params[i].first, value);
      bound[i] = true;
    }
    ++call_depth_;
    for (size_t i = 0; i < macro.params.size(); ++i) {
      if (bound[i]) continue;
      const auto& [name, default_value] = macro.params[i];
      if (default_value == nullptr) {
        scope.Set(name, Value::Undefined(absl::StrCat("parameter '", name,
                                                      "' was not provided")));
        continue;
      }
      absl::StatusOr<Value> v = Eval(*default_value, scope);
      if (!v.ok()) {
        --call_depth_;
        return v.status();
      }
      scope.Set(name, *std::move(v));
    }
    std::string out;
    absl::StatusOr<Flow> flow = ExecList(macro.body, scope, out);
    --call_depth_;
    if (!flow.ok()) return flow.status();
    return Value::String(std::move(out));
  }

  absl::StatusOr<Value> EvalFilter(const Expr& e, Scope& scope) {
    Value subject;
    if (e.args[0] != nullptr) {
      ASSIGN_OR_RETURN(subject, Eval(*e.args[0], scope));
    } else if (block_subject_ != nullptr) {
      subject = *block_subject_;
    }
    ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
    return At(e.pos, ApplyFilter(e.builtin, subject, args, *this));
  }

  RenderOptions options_;
  std::vector<std::pair<absl::string_view, Value>> globals_;
  const Scope* root_ = nullptr;
  const Value* block_subject_ = nullptr;  // the body of a filter block
  int call_depth_ = 0;
  int64_t iterations_ = 0;
  int64_t work_ = 0;
};

}  // namespace

absl::StatusOr<std::string> Evaluate(const StmtList& program,
                                     Variables variables,
                                     const RenderOptions& options) {
  Renderer renderer(options);
  return renderer.Run(program, variables);
}

}  // namespace lumen::chat::jinja
