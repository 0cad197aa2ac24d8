#include "chat/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "chat/jinja/builtins.h"

namespace lumen::chat::jinja {

namespace {

using Names = std::initializer_list<absl::string_view>;

std::string Describe(const Token& t) {
  switch (t.kind) {
    case TokenKind::kText:
      return "template text";
    case TokenKind::kVariableBegin:
      return "'{{'";
    case TokenKind::kVariableEnd:
      return "'}}'";
    case TokenKind::kBlockBegin:
      return "'{%'";
    case TokenKind::kBlockEnd:
      return "'%}'";
    case TokenKind::kName:
    case TokenKind::kOperator:
      return absl::StrCat("'", t.text, "'");
    case TokenKind::kString:
      return "a string";
    case TokenKind::kInteger:
    case TokenKind::kFloat:
      return "a number";
    case TokenKind::kEnd:
      return "end of template";
  }
  return "?";
}

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const CompileOptions& options)
      : tokens_(tokens), options_(options) {}

  absl::StatusOr<StmtList> ParseTemplate() {
    StmtList body;
    RETURN_IF_ERROR(ParseBody({}, &body));
    if (Current().kind != TokenKind::kEnd) {
      return Fail(absl::StrCat("unexpected ", Describe(Current())));
    }
    return body;
  }

 private:
  // ---- token stream ----
  const Token& Current() const { return tokens_[index_]; }
  const Token& Peek(size_t ahead = 1) const {
    return tokens_[std::min(index_ + ahead, tokens_.size() - 1)];
  }
  void Advance() {
    if (index_ + 1 < tokens_.size()) ++index_;
  }
  bool IsOp(absl::string_view op) const {
    return Current().kind == TokenKind::kOperator && Current().text == op;
  }
  bool IsName(absl::string_view name) const {
    return Current().kind == TokenKind::kName && Current().text == name;
  }
  bool IsNameIn(Names names) const {
    if (Current().kind != TokenKind::kName) return false;
    for (absl::string_view n : names)
      if (Current().text == n) return true;
    return false;
  }
  bool SkipOp(absl::string_view op) {
    if (!IsOp(op)) return false;
    Advance();
    return true;
  }
  bool SkipName(absl::string_view name) {
    if (!IsName(name)) return false;
    Advance();
    return true;
  }

  absl::Status Fail(absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(FormatPos(Current().pos), ": ", message));
  }
  absl::Status Expected(absl::string_view what) const {
    return Fail(absl::StrCat("expected ", what, ", got ", Describe(Current())));
  }
  absl::Status ExpectOp(absl::string_view op) {
    if (!SkipOp(op)) return Expected(absl::StrCat("'", op, "'"));
    return absl::OkStatus();
  }
  absl::Status ExpectName(absl::string_view name) {
    if (!SkipName(name)) return Expected(absl::StrCat("'", name, "'"));
    return absl::OkStatus();
  }
  absl::Status ExpectKind(TokenKind kind, absl::string_view what) {
    if (Current().kind != kind) return Expected(what);
    Advance();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectIdentifier() {
    if (Current().kind != TokenKind::kName) return Expected("a name");
    std::string name = Current().text;
    Advance();
    return name;
  }

  // ---- tree building with bounded depth ----
  absl::StatusOr<ExprPtr> Node(ExprKind kind, SourcePos pos,
                               std::vector<ExprPtr> args = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    e->args = std::move(args);
    RETURN_IF_ERROR(Seal(e.get()));
    return e;
  }
  // Computes the height of `e` from its children; fails beyond the limit.
  absl::Status Seal(Expr* e) const {
    int depth = 0;
    for (const ExprPtr& a : e->args)
      if (a) depth = std::max(depth, a->depth);
    for (const auto& kw : e->kwargs) depth = std::max(depth, kw.second->depth);
    e->depth = depth + 1;
    if (e->depth > options_.max_expression_depth) {
      return absl::InvalidArgumentError(
          absl::StrCat(FormatPos(e->pos), ": expression nested deeper than ",
                       options_.max_expression_depth, " levels"));
    }
    return absl::OkStatus();
  }

  // ---- statements ----

  // Statements until a block tag whose name is in `end_names` (left as the
  // current token) or the end of the template.
  absl::Status ParseBody(Names end_names, StmtList* body) {
    while (true) {
      const Token& t = Current();
      switch (t.kind) {
        case TokenKind::kEnd:
          if (end_names.size() > 0) {
            return Fail(absl::StrCat("unexpected end of template, expected '",
                                     *end_names.begin(), "'"));
          }
          return absl::OkStatus();
        case TokenKind::kText: {
          auto s = std::make_unique<TextStmt>();
          s->pos = t.pos;
          s->text = t.text;
          body->push_back(std::move(s));
          Advance();
          break;
        }
        case TokenKind::kVariableBegin: {
          auto s = std::make_unique<OutputStmt>();
          s->pos = t.pos;
          Advance();
          ASSIGN_OR_RETURN(s->expr, ParseTuple(/*with_condexpr=*/true));
          RETURN_IF_ERROR(ExpectKind(TokenKind::kVariableEnd, "'}}'"));
          body->push_back(std::move(s));
          break;
        }
        case TokenKind::kBlockBegin: {
          Advance();
          if (IsNameIn(end_names)) return absl::OkStatus();
          RETURN_IF_ERROR(ParseStatement(body));
          RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
          break;
        }
        default:
          return Fail(absl::StrCat("unexpected ", Describe(t)));
      }
    }
  }

  // `%}` then a body up to one of `end_names` (left current).
  absl::Status ParseBlockBody(Names end_names, StmtList* body) {
    RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
    if (++block_depth_ > options_.max_block_depth) {
      return Fail(absl::StrCat("blocks nested deeper than ",
                               options_.max_block_depth, " levels"));
    }
    RETURN_IF_ERROR(ParseBody(end_names, body));
    --block_depth_;
    return absl::OkStatus();
  }

  absl::Status ParseStatement(StmtList* body) {
    if (Current().kind != TokenKind::kName) return Expected("a tag name");
    const std::string tag = Current().text;
    const SourcePos pos = Current().pos;
    if (tag == "if") return ParseIf(body);
    if (tag == "for") return ParseFor(body);
    if (tag == "set") return ParseSet(body);
    if (tag == "macro") return ParseMacro(body);
    if (tag == "filter") return ParseFilterBlock(body);
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) {
        return Fail(absl::StrCat("'", tag, "' outside of a loop"));
      }
      Advance();
      auto s = std::make_unique<LoopControlStmt>(
          tag == "break" ? StmtKind::kBreak : StmtKind::kContinue);
      s->pos = pos;
      body->push_back(std::move(s));
      return absl::OkStatus();
    }
    static constexpr absl::string_view kUnsupported[] = {
        "include", "import", "from",       "extends", "block", "call",
        "with",    "do",     "autoescape", "trans",   "print"};
    for (absl::string_view u : kUnsupported) {
      if (tag == u) {
        return Fail(absl::StrCat("the '", tag,
                                 "' tag is not supported in chat templates"));
      }
    }
    return Fail(absl::StrCat("unknown or misplaced tag '", tag, "'"));
  }

  absl::Status ParseIf(StmtList* body) {
    auto s = std::make_unique<IfStmt>();
    s->pos = Current().pos;
    Advance();  // if
    while (true) {
      ASSIGN_OR_RETURN(ExprPtr test, ParseTuple(/*with_condexpr=*/false));
      StmtList branch;
      RETURN_IF_ERROR(ParseBlockBody({"elif", "else", "endif"}, &branch));
      s->branches.emplace_back(std::move(test), std::move(branch));
      if (SkipName("elif")) continue;
      if (SkipName("else")) {
        RETURN_IF_ERROR(ParseBlockBody({"endif"}, &s->else_body));
      }
      RETURN_IF_ERROR(ExpectName("endif"));
      break;
    }
    body->push_back(std::move(s));
    return absl::OkStatus();
  }

  // name | name, name, ... | (name, ...) | ns.attr (with_namespace).
  absl::StatusOr<AssignTarget> ParseAssignTarget(bool with_namespace) {
    AssignTarget target;
    if (with_namespace && Current().kind == TokenKind::kName &&
        Peek().kind == TokenKind::kOperator && Peek().text == ".") {
      target.names.push_back(Current().text);
      Advance();
      Advance();
      ASSIGN_OR_RETURN(target.ns_attribute, ExpectIdentifier());
      return target;
    }
    const bool parens = SkipOp("(");
    while (true) {
      ASSIGN_OR_RETURN(std::string name, ExpectIdentifier());
      static constexpr absl::string_view kReserved[] = {
          "true", "false", "none", "True", "False", "None", "loop"};
      for (absl::string_view r : kReserved) {
        if (name == r && !(r == "loop" && with_namespace)) {
          return Fail(absl::StrCat("cannot assign to '", name, "'"));
        }
      }
      target.names.push_back(std::move(name));
      if (!SkipOp(",")) break;
      target.unpack = true;
      if (Current().kind != TokenKind::kName) break;  // trailing comma
    }
    if (parens) RETURN_IF_ERROR(ExpectOp(")"));
    return target;
  }

  absl::Status ParseFor(StmtList* body) {
    auto s = std::make_unique<ForStmt>();
    s->pos = Current().pos;
    Advance();  // for
    ASSIGN_OR_RETURN(s->target, ParseAssignTarget(/*with_namespace=*/false));
    RETURN_IF_ERROR(ExpectName("in"));
    ASSIGN_OR_RETURN(s->iterable, ParseTuple(/*with_condexpr=*/false));
    if (SkipName("if")) {
      ASSIGN_OR_RETURN(s->filter, ParseExpression(/*with_condexpr=*/true));
    }
    if (IsName("recursive")) return Fail("recursive loops are not supported");
    ++loop_depth_;
    RETURN_IF_ERROR(ParseBlockBody({"endfor", "else"}, &s->body));
    --loop_depth_;
    if (SkipName("else")) {
      RETURN_IF_ERROR(ParseBlockBody({"endfor"}, &s->else_body));
    }
    RETURN_IF_ERROR(ExpectName("endfor"));
    body->push_back(std::move(s));
    return absl::OkStatus();
  }

  absl::Status ParseSet(StmtList* body) {
    const SourcePos pos = Current().pos;
    Advance();  // set
    ASSIGN_OR_RETURN(AssignTarget target,
                     ParseAssignTarget(/*with_namespace=*/true));
    if (SkipOp("=")) {
      auto s = std::make_unique<SetStmt>();
      s->pos = pos;
      s->target = std::move(target);
      ASSIGN_OR_RETURN(s->value, ParseTuple(/*with_condexpr=*/true));
      body->push_back(std::move(s));
      return absl::OkStatus();
    }
    auto s = std::make_unique<SetBlockStmt>();
    s->pos = pos;
    s->target = std::move(target);
    if (IsOp("|")) {
      ASSIGN_OR_RETURN(s->filter, ParseFilterChain(nullptr, pos));
    }
    // A block set is a new scope for loop controls, like a macro body.
    const int loops = loop_depth_;
    loop_depth_ = 0;
    RETURN_IF_ERROR(ParseBlockBody({"endset"}, &s->body));
    loop_depth_ = loops;
    RETURN_IF_ERROR(ExpectName("endset"));
    body->push_back(std::move(s));
    return absl::OkStatus();
  }

  absl::Status ParseFilterBlock(StmtList* body) {
    auto s = std::make_unique<FilterBlockStmt>();
    s->pos = Current().pos;
    Advance();  // filter
    // `{% filter upper %}`: the first filter has no leading '|'.
    ASSIGN_OR_RETURN(s->filter, ParseOneFilter(nullptr, s->pos));
    if (IsOp("|")) {
      ASSIGN_OR_RETURN(s->filter,
                       ParseFilterChain(std::move(s->filter), s->pos));
    }
    RETURN_IF_ERROR(ParseBlockBody({"endfilter"}, &s->body));
    RETURN_IF_ERROR(ExpectName("endfilter"));
    body->push_back(std::move(s));
    return absl::OkStatus();
  }

  absl::Status ParseMacro(StmtList* body) {
    auto s = std::make_unique<MacroStmt>();
    s->pos = Current().pos;
    Advance();  // macro
    ASSIGN_OR_RETURN(s->name, ExpectIdentifier());
    RETURN_IF_ERROR(ExpectOp("("));
    bool has_default = false;
    while (!IsOp(")")) {
      if (!s->params.empty()) RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp(")")) break;
      ASSIGN_OR_RETURN(std::string param, ExpectIdentifier());
      ExprPtr default_value;
      if (SkipOp("=")) {
        ASSIGN_OR_RETURN(default_value, ParseExpression(true));
        has_default = true;
      } else if (has_default) {
        return Fail("non-default argument follows default argument");
      }
      s->params.emplace_back(std::move(param), std::move(default_value));
    }
    RETURN_IF_ERROR(ExpectOp(")"));
    const int loops = loop_depth_;
    loop_depth_ = 0;
    RETURN_IF_ERROR(ParseBlockBody({"endmacro"}, &s->body));
    loop_depth_ = loops;
    RETURN_IF_ERROR(ExpectName("endmacro"));
    body->push_back(std::move(s));
    return absl::OkStatus();
  }

  // ---- expressions (jinja2's precedence, loosest first) ----

  bool AtTupleEnd() const {
    const TokenKind k = Current().kind;
    return k == TokenKind::kVariableEnd || k == TokenKind::kBlockEnd ||
           IsOp(")");
  }

  // `a` or `a, b, ...` (a tuple). Without condexpr, `x if y` is not parsed
  // (the `if` of a for loop or of an if tag follows).
  absl::StatusOr<ExprPtr> ParseTuple(bool with_condexpr,
                                     bool explicit_parens = false) {
    const SourcePos pos = Current().pos;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) RETURN_IF_ERROR(ExpectOp(","));
      if (AtTupleEnd()) break;
      ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(with_condexpr));
      items.push_back(std::move(item));
      if (IsOp(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) return Expected("an expression");
    }
    return Node(ExprKind::kTuple, pos, std::move(items));
  }

  absl::StatusOr<ExprPtr> ParseExpression(bool with_condexpr) {
    return with_condexpr ? ParseCondition() : ParseOr();
  }

  absl::StatusOr<ExprPtr> ParseCondition() {
    ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
    while (IsName("if")) {
      const SourcePos pos = Current().pos;
      Advance();
      ASSIGN_OR_RETURN(ExprPtr condition, ParseOr());
      ExprPtr otherwise;
      if (SkipName("else")) {
        ASSIGN_OR_RETURN(otherwise, ParseCondition());
      }
      std::vector<ExprPtr> args;
      args.push_back(std::move(expr));
      args.push_back(std::move(condition));
      args.push_back(std::move(otherwise));
      ASSIGN_OR_RETURN(expr, Node(ExprKind::kCondition, pos, std::move(args)));
    }
    return expr;
  }

  absl::StatusOr<ExprPtr> Binary(ExprKind kind, SourcePos pos, ExprPtr left,
                                 ExprPtr right) {
    std::vector<ExprPtr> args;
    args.push_back(std::move(left));
    args.push_back(std::move(right));
    return Node(kind, pos, std::move(args));
  }

  absl::StatusOr<ExprPtr> ParseOr() {
    ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
    while (IsName("or")) {
      const SourcePos pos = Current().pos;
      Advance();
      ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
      ASSIGN_OR_RETURN(
          left, Binary(ExprKind::kOr, pos, std::move(left), std::move(right)));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseAnd() {
    ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
    while (IsName("and")) {
      const SourcePos pos = Current().pos;
      Advance();
      ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
      ASSIGN_OR_RETURN(
          left, Binary(ExprKind::kAnd, pos, std::move(left), std::move(right)));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseNot() {
    if (IsName("not")) {
      const SourcePos pos = Current().pos;
      Advance();
      RETURN_IF_ERROR(EnterRecursion());
      ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
      --recursion_;
      std::vector<ExprPtr> args;
      args.push_back(std::move(operand));
      return Node(ExprKind::kNot, pos, std::move(args));
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    const SourcePos pos = Current().pos;
    ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    std::vector<ExprPtr> operands;
    std::vector<CompareOp> ops;
    operands.push_back(std::move(first));
    while (true) {
      CompareOp op;
      if (Current().kind == TokenKind::kOperator) {
        const std::string& t = Current().text;
        if (t == "==") {
          op = CompareOp::kEq;
        } else if (t == "!=") {
          op = CompareOp::kNe;
        } else if (t == "<") {
          op = CompareOp::kLt;
        } else if (t == "<=") {
          op = CompareOp::kLe;
        } else if (t == ">") {
          op = CompareOp::kGt;
        } else if (t == ">=") {
          op = CompareOp::kGe;
        } else {
          break;
        }
        Advance();
      } else if (IsName("in")) {
        op = CompareOp::kIn;
        Advance();
      } else if (IsName("not") && Peek().kind == TokenKind::kName &&
                 Peek().text == "in") {
        op = CompareOp::kNotIn;
        Advance();
        Advance();
      } else {
        break;
      }
      ASSIGN_OR_RETURN(ExprPtr operand, ParseMath1());
      operands.push_back(std::move(operand));
      ops.push_back(op);
    }
    if (ops.empty()) return std::move(operands[0]);
    auto e = std::make_unique<Expr>();
    e->kind = ExprKind::kCompare;
    e->pos = pos;
    e->args = std::move(operands);
    e->compare_ops = std::move(ops);
    RETURN_IF_ERROR(Seal(e.get()));
    return e;
  }

  absl::StatusOr<ExprPtr> ArithmeticNode(BinaryOp op, SourcePos pos,
                                         ExprPtr left, ExprPtr right) {
    ASSIGN_OR_RETURN(ExprPtr e, Binary(ExprKind::kBinary, pos, std::move(left),
                                       std::move(right)));
    e->op = op;
    return e;
  }

  absl::StatusOr<ExprPtr> ParseMath1() {
    ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
    while (IsOp("+") || IsOp("-")) {
      const BinaryOp op = IsOp("+") ? BinaryOp::kAdd : BinaryOp::kSub;
      const SourcePos pos = Current().pos;
      Advance();
      ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
      ASSIGN_OR_RETURN(
          left, ArithmeticNode(op, pos, std::move(left), std::move(right)));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseConcat() {
    const SourcePos pos = Current().pos;
    ASSIGN_OR_RETURN(ExprPtr first, ParseMath2());
    if (!IsOp("~")) return first;
    std::vector<ExprPtr> parts;
    parts.push_back(std::move(first));
    while (SkipOp("~")) {
      ASSIGN_OR_RETURN(ExprPtr next, ParseMath2());
      parts.push_back(std::move(next));
    }
    return Node(ExprKind::kConcat, pos, std::move(parts));
  }

  absl::StatusOr<ExprPtr> ParseMath2() {
    ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
    while (true) {
      BinaryOp op;
      if (IsOp("*")) {
        op = BinaryOp::kMul;
      } else if (IsOp("/")) {
        op = BinaryOp::kDiv;
      } else if (IsOp("//")) {
        op = BinaryOp::kFloorDiv;
      } else if (IsOp("%")) {
        op = BinaryOp::kMod;
      } else {
        break;
      }
      const SourcePos pos = Current().pos;
      Advance();
      ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
      ASSIGN_OR_RETURN(
          left, ArithmeticNode(op, pos, std::move(left), std::move(right)));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParsePow() {
    ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(/*with_filter=*/true));
    while (IsOp("**")) {
      const SourcePos pos = Current().pos;
      Advance();
      ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(true));
      ASSIGN_OR_RETURN(left, ArithmeticNode(BinaryOp::kPow, pos,
                                            std::move(left), std::move(right)));
    }
    return left;
  }

  absl::Status EnterRecursion() {
    if (++recursion_ > options_.max_expression_depth) {
      return Fail(absl::StrCat("expression nested deeper than ",
                               options_.max_expression_depth, " levels"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter) {
    const SourcePos pos = Current().pos;
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      const ExprKind kind = IsOp("-") ? ExprKind::kNegate : ExprKind::kPlus;
      Advance();
      RETURN_IF_ERROR(EnterRecursion());
      ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(/*with_filter=*/false));
      --recursion_;
      std::vector<ExprPtr> args;
      args.push_back(std::move(operand));
      ASSIGN_OR_RETURN(node, Node(kind, pos, std::move(args)));
    } else {
      ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    return node;
  }

  absl::StatusOr<ExprPtr> Literal(Value v, SourcePos pos) {
    ASSIGN_OR_RETURN(ExprPtr e, Node(ExprKind::kLiteral, pos));
    e->literal = std::move(v);
    return e;
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Current();
    const SourcePos pos = t.pos;
    switch (t.kind) {
      case TokenKind::kName: {
        const std::string& n = t.text;
        Value literal;
        bool is_literal = true;
        if (n == "true" || n == "True") {
          literal = Value::Bool(true);
        } else if (n == "false" || n == "False") {
          literal = Value::Bool(false);
        } else if (n == "none" || n == "None") {
          literal = Value::None();
        } else {
          is_literal = false;
        }
        if (is_literal) {
          Advance();
          return Literal(std::move(literal), pos);
        }
        ASSIGN_OR_RETURN(ExprPtr e, Node(ExprKind::kName, pos));
        e->name = n;
        e->name_value = Value::String(n);
        Advance();
        return e;
      }
      case TokenKind::kString: {
        std::string s = t.text;
        Advance();
        while (Current().kind == TokenKind::kString) {  // "a" "b" is "ab"
          s += Current().text;
          Advance();
        }
        return Literal(Value::String(std::move(s)), pos);
      }
      case TokenKind::kInteger: {
        const int64_t v = t.int_value;
        Advance();
        return Literal(Value::Int(v), pos);
      }
      case TokenKind::kFloat: {
        const double v = t.float_value;
        Advance();
        return Literal(Value::Float(v), pos);
      }
      case TokenKind::kOperator:
        break;
      default:
        return Fail(absl::StrCat("unexpected ", Describe(t)));
    }
    RETURN_IF_ERROR(EnterRecursion());
    absl::StatusOr<ExprPtr> result;
    if (SkipOp("(")) {
      result = ParseTuple(/*with_condexpr=*/true, /*explicit_parens=*/true);
      if (result.ok()) {
        if (absl::Status s = ExpectOp(")"); !s.ok()) result = s;
      }
    } else if (SkipOp("[")) {
      result = ParseList(pos);
    } else if (SkipOp("{")) {
      result = ParseDict(pos);
    } else {
      result = Fail(absl::StrCat("unexpected ", Describe(t)));
    }
    --recursion_;
    return result;
  }

  absl::StatusOr<ExprPtr> ParseList(SourcePos pos) {
    std::vector<ExprPtr> items;
    while (!IsOp("]")) {
      if (!items.empty()) RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp("]")) break;
      ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
      items.push_back(std::move(item));
    }
    RETURN_IF_ERROR(ExpectOp("]"));
    return Node(ExprKind::kList, pos, std::move(items));
  }

  absl::StatusOr<ExprPtr> ParseDict(SourcePos pos) {
    std::vector<ExprPtr> items;
    while (!IsOp("}")) {
      if (!items.empty()) RETURN_IF_ERROR(ExpectOp(","));
      if (IsOp("}")) break;
      ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
      RETURN_IF_ERROR(ExpectOp(":"));
      ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      items.push_back(std::move(key));
      items.push_back(std::move(value));
    }
    RETURN_IF_ERROR(ExpectOp("}"));
    return Node(ExprKind::kDict, pos, std::move(items));
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      const SourcePos pos = Current().pos;
      if (SkipOp(".")) {
        if (Current().kind == TokenKind::kName) {
          std::vector<ExprPtr> args;
          args.push_back(std::move(node));
          ASSIGN_OR_RETURN(node,
                           Node(ExprKind::kGetAttr, pos, std::move(args)));
          node->name = Current().text;
          node->name_value = Value::String(node->name);
          Advance();
        } else if (Current().kind == TokenKind::kInteger) {
          ASSIGN_OR_RETURN(
              ExprPtr index,
              Literal(Value::Int(Current().int_value), Current().pos));
          Advance();
          ASSIGN_OR_RETURN(node, Binary(ExprKind::kGetItem, pos,
                                        std::move(node), std::move(index)));
        } else {
          return Expected("a name or number after '.'");
        }
      } else if (SkipOp("[")) {
        RETURN_IF_ERROR(EnterRecursion());
        ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node), pos));
        --recursion_;
      } else if (IsOp("(")) {
        ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  // After '[': an index or a slice, then ']'.
  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr object, SourcePos pos) {
    ExprPtr parts[3];
    bool is_slice = false;
    if (!IsOp(":")) {
      ASSIGN_OR_RETURN(parts[0], ParseExpression(true));
    }
    if (SkipOp(":")) {
      is_slice = true;
      if (!IsOp(":") && !IsOp("]")) {
        ASSIGN_OR_RETURN(parts[1], ParseExpression(true));
      }
      if (SkipOp(":") && !IsOp("]")) {
        ASSIGN_OR_RETURN(parts[2], ParseExpression(true));
      }
    }
    if (IsOp(",")) return Fail("tuple subscripts are not supported");
    RETURN_IF_ERROR(ExpectOp("]"));
    if (!is_slice) {
      if (parts[0] == nullptr) return Expected("an index");
      return Binary(ExprKind::kGetItem, pos, std::move(object),
                    std::move(parts[0]));
    }
    std::vector<ExprPtr> args;
    args.push_back(std::move(object));
    for (ExprPtr& p : parts) args.push_back(std::move(p));
    return Node(ExprKind::kSlice, pos, std::move(args));
  }

  // '(' arguments ')' into e->args (after any already there) and e->kwargs.
  absl::Status ParseCallArgs(Expr* e) {
    RETURN_IF_ERROR(EnterRecursion());
    RETURN_IF_ERROR(ExpectOp("("));
    bool first = true;
    while (!IsOp(")")) {
      if (!first) RETURN_IF_ERROR(ExpectOp(","));
      first = false;
      if (IsOp(")")) break;
      if (IsOp("*") || IsOp("**")) {
        return Fail("*args and **kwargs in calls are not supported");
      }
      if (Current().kind == TokenKind::kName &&
          Peek().kind == TokenKind::kOperator && Peek().text == "=") {
        std::string key = Current().text;
        Advance();
        Advance();
        ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        e->kwargs.emplace_back(std::move(key), std::move(value));
      } else {
        if (!e->kwargs.empty()) {
          return Fail("positional argument follows keyword argument");
        }
        ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        e->args.push_back(std::move(value));
      }
    }
    RETURN_IF_ERROR(ExpectOp(")"));
    --recursion_;
    return Seal(e);
  }

  absl::StatusOr<ExprPtr> ParseCall(ExprPtr callee) {
    auto e = std::make_unique<Expr>();
    e->kind = ExprKind::kCall;
    e->pos = Current().pos;
    e->args.push_back(std::move(callee));
    RETURN_IF_ERROR(ParseCallArgs(e.get()));
    return e;
  }

  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        ASSIGN_OR_RETURN(node,
                         ParseFilterChain(std::move(node), Current().pos));
      } else if (IsName("is")) {
        ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
      } else if (IsOp("(")) {
        ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  // name[.name] [(args)], applied to `subject` (null inside filter blocks).
  absl::StatusOr<ExprPtr> ParseOneFilter(ExprPtr subject, SourcePos pos) {
    ASSIGN_OR_RETURN(std::string name, ExpectIdentifier());
    while (SkipOp(".")) {
      ASSIGN_OR_RETURN(std::string part, ExpectIdentifier());
      absl::StrAppend(&name, ".", part);
    }
    auto e = std::make_unique<Expr>();
    e->kind = ExprKind::kFilter;
    e->pos = pos;
    e->builtin = FindFilter(name);
    if (e->builtin < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(FormatPos(pos), ": no filter named '", name, "'"));
    }
    e->name = std::move(name);
    e->args.push_back(std::move(subject));
    if (IsOp("(")) {
      RETURN_IF_ERROR(ParseCallArgs(e.get()));
    } else {
      RETURN_IF_ERROR(Seal(e.get()));
    }
    return e;
  }

  // | f | g(...) ... applied to `subject`.
  absl::StatusOr<ExprPtr> ParseFilterChain(ExprPtr subject, SourcePos pos) {
    while (IsOp("|")) {
      const SourcePos filter_pos = Current().pos;
      Advance();
      ASSIGN_OR_RETURN(subject, ParseOneFilter(std::move(subject), filter_pos));
    }
    return subject;
  }

  absl::StatusOr<ExprPtr> ParseTest(ExprPtr subject) {
    const SourcePos pos = Current().pos;
    Advance();  // is
    const bool negated = SkipName("not");
    ASSIGN_OR_RETURN(std::string name, ExpectIdentifier());
    while (SkipOp(".")) {
      ASSIGN_OR_RETURN(std::string part, ExpectIdentifier());
      absl::StrAppend(&name, ".", part);
    }
    auto e = std::make_unique<Expr>();
    e->kind = ExprKind::kTest;
    e->pos = pos;
    e->negated = negated;
    e->builtin = FindTest(name);
    if (e->builtin < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(FormatPos(pos), ": no test named '", name, "'"));
    }
    e->name = std::move(name);
    e->args.push_back(std::move(subject));
    const Token& t = Current();
    if (IsOp("(")) {
      RETURN_IF_ERROR(ParseCallArgs(e.get()));
      return e;
    }
    // `x is divisibleby 3`, `x is sameas none`: one argument without parens.
    const bool starts_argument =
        t.kind == TokenKind::kName || t.kind == TokenKind::kString ||
        t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat ||
        IsOp("[") || IsOp("{");
    if (starts_argument && !IsNameIn({"else", "or", "and"})) {
      if (IsName("is")) return Fail("tests cannot be chained with 'is'");
      ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
      ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
      e->args.push_back(std::move(arg));
    }
    RETURN_IF_ERROR(Seal(e.get()));
    return e;
  }

  const std::vector<Token>& tokens_;
  const CompileOptions options_;
  size_t index_ = 0;
  int block_depth_ = 0;
  int loop_depth_ = 0;  // loops around the current statement (for break)
  int recursion_ = 0;   // parser recursion through nested expressions
};

}  // namespace

absl::StatusOr<StmtList> Parse(const std::vector<Token>& tokens,
                               const CompileOptions& options) {
  if (tokens.empty() || tokens.back().kind != TokenKind::kEnd) {
    return absl::InvalidArgumentError("token stream without an end");
  }
  Parser parser(tokens, options);
  return parser.ParseTemplate();
}

}  // namespace lumen::chat::jinja
