#include "chat/jinja/parser.h"

#include "chat/jinja/builtins.h"
#include "chat/jinja/parser_impl.h"

namespace lumen::chat::jinja {
namespace internal {

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

absl::Status Parser::ParseBody(Names end_names, StmtList* body) {
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

absl::Status Parser::ParseBlockBody(Names end_names, StmtList* body) {
  RETURN_IF_ERROR(ExpectKind(TokenKind::kBlockEnd, "'%}'"));
  if (++block_depth_ > options_.max_block_depth) {
    return Fail(absl::StrCat("blocks nested deeper than ",
                             options_.max_block_depth, " levels"));
  }
  RETURN_IF_ERROR(ParseBody(end_names, body));
  --block_depth_;
  return absl::OkStatus();
}

absl::Status Parser::ParseStatement(StmtList* body) {
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

absl::Status Parser::ParseIf(StmtList* body) {
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

absl::StatusOr<AssignTarget> Parser::ParseAssignTarget(bool with_namespace) {
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

absl::Status Parser::ParseFor(StmtList* body) {
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

absl::Status Parser::ParseSet(StmtList* body) {
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

absl::Status Parser::ParseFilterBlock(StmtList* body) {
  auto s = std::make_unique<FilterBlockStmt>();
  s->pos = Current().pos;
  Advance();  // filter
  // `{% filter upper %}`: the first filter has no leading '|'.
  ASSIGN_OR_RETURN(s->filter, ParseOneFilter(nullptr, s->pos));
  if (IsOp("|")) {
    ASSIGN_OR_RETURN(s->filter, ParseFilterChain(std::move(s->filter), s->pos));
  }
  RETURN_IF_ERROR(ParseBlockBody({"endfilter"}, &s->body));
  RETURN_IF_ERROR(ExpectName("endfilter"));
  body->push_back(std::move(s));
  return absl::OkStatus();
}

absl::Status Parser::ParseMacro(StmtList* body) {
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

}  // namespace internal

absl::StatusOr<StmtList> Parse(const std::vector<Token>& tokens,
                               const CompileOptions& options) {
  if (tokens.empty() || tokens.back().kind != TokenKind::kEnd) {
    return absl::InvalidArgumentError("token stream without an end");
  }
  internal::Parser parser(tokens, options);
  return parser.ParseTemplate();
}

}  // namespace lumen::chat::jinja
