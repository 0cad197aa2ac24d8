#include "engine/tokenizer/regex.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/unicode.h"

namespace lumen::engine {

bool Regex::Class::Matches(uint32_t cp) const {
  bool hit = (category_mask & CodepointCategory(cp)) != 0 ||
             (whitespace && IsWhitespace(cp)) ||
             (not_whitespace && !IsWhitespace(cp));
  for (size_t i = 0; !hit && i < ranges.size(); ++i) {
    hit = cp >= ranges[i].first && cp <= ranges[i].second;
  }
  return hit != negated;
}

namespace {

// Parses the pattern into an AST, then emits backtracking-VM code.
struct Node {
  enum Kind { kClass, kSeq, kAlt, kRepeat, kNegLook, kEnd } kind;
  int class_index = -1;
  int min = 1, max = 1;  // kRepeat; max -1 = unbounded
  std::vector<Node> children = {};
};

class Parser {
 public:
  Parser(std::vector<uint32_t> p, std::vector<Regex::Class>* classes)
      : p_(std::move(p)), classes_(classes) {}

  absl::StatusOr<Node> ParseAll() {
    ASSIGN_OR_RETURN(Node n, ParseAlt());
    if (i_ != p_.size()) return Error("unbalanced ')'");
    return n;
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("regex: ", what, " at code point ", i_));
  }
  bool More() const { return i_ < p_.size(); }
  uint32_t Peek() const { return p_[i_]; }

  absl::StatusOr<Node> ParseAlt() {
    Node alt{Node::kAlt};
    while (true) {
      ASSIGN_OR_RETURN(Node seq, ParseSeq());
      alt.children.push_back(std::move(seq));
      if (More() && Peek() == '|') {
        ++i_;
        continue;
      }
      return alt;
    }
  }

  absl::StatusOr<Node> ParseSeq() {
    Node seq{Node::kSeq};
    while (More() && Peek() != '|' && Peek() != ')') {
      ASSIGN_OR_RETURN(Node atom, ParseAtom());
      ASSIGN_OR_RETURN(atom, ParseQuantifier(std::move(atom)));
      seq.children.push_back(std::move(atom));
    }
    return seq;
  }

  absl::StatusOr<Node> ParseQuantifier(Node atom) {
    if (!More()) return atom;
    int min = 1, max = 1;
    const uint32_t c = Peek();
    if (c == '?') {
      min = 0;
    } else if (c == '*') {
      min = 0;
      max = -1;
    } else if (c == '+') {
      max = -1;
    } else if (c == '{') {
      ++i_;
      ASSIGN_OR_RETURN(min, ParseNumber());
      max = min;
      if (More() && Peek() == ',') {
        ++i_;
        if (More() && Peek() == '}') {
          max = -1;
        } else {
          ASSIGN_OR_RETURN(max, ParseNumber());
        }
      }
      if (!More() || Peek() != '}') return Error("expected '}'");
    } else {
      return atom;
    }
    ++i_;
    if (More() && (Peek() == '?' || Peek() == '+')) {
      return Error("lazy and possessive quantifiers are not supported");
    }
    Node rep{Node::kRepeat};
    rep.min = min;
    rep.max = max;
    rep.children.push_back(std::move(atom));
    return rep;
  }

  absl::StatusOr<int> ParseNumber() {
    int v = 0;
    bool any = false;
    while (More() && Peek() >= '0' && Peek() <= '9') {
      v = v * 10 + static_cast<int>(Peek() - '0');
      ++i_;
      any = true;
      if (v > 1000) return Error("repeat count too large");
    }
    if (!any) return Error("expected a number");
    return v;
  }

  int AddClass(Regex::Class c) {
    classes_->push_back(std::move(c));
    return static_cast<int>(classes_->size()) - 1;
  }

  Node ClassNode(Regex::Class c) {
    Node n{Node::kClass};
    n.class_index = AddClass(std::move(c));
    return n;
  }

  // After a backslash: fills `c` for \s \S \d \p{..} \r \n \t or a literal.
  absl::Status ParseEscape(Regex::Class* c, bool* is_literal, uint32_t* lit) {
    if (!More()) return Error("trailing backslash");
    const uint32_t e = p_[i_++];
    *is_literal = false;
    switch (e) {
      case 's':
        c->whitespace = true;
        return absl::OkStatus();
      case 'S':
        c->not_whitespace = true;
        return absl::OkStatus();
      case 'd':
        c->ranges.push_back({'0', '9'});
        return absl::OkStatus();
      case 'r':
        *is_literal = true;
        *lit = '\r';
        return absl::OkStatus();
      case 'n':
        *is_literal = true;
        *lit = '\n';
        return absl::OkStatus();
      case 't':
        *is_literal = true;
        *lit = '\t';
        return absl::OkStatus();
      case 'p': {
        if (i_ + 2 >= p_.size() || p_[i_] != '{' || p_[i_ + 2] != '}') {
          return Error("expected \\p{X}");
        }
        const uint32_t cat = p_[i_ + 1];
        i_ += 3;
        switch (cat) {
          case 'L':
            c->category_mask |= kCpLetter;
            break;
          case 'N':
            c->category_mask |= kCpNumber;
            break;
          case 'P':
            c->category_mask |= kCpPunctuation;
            break;
          case 'S':
            c->category_mask |= kCpSymbol;
            break;
          case 'M':
            c->category_mask |= kCpMark;
            break;
          case 'Z':
            c->category_mask |= kCpSeparator;
            break;
          default:
            return Error("unsupported \\p category");
        }
        return absl::OkStatus();
      }
      default:
        *is_literal = true;
        *lit = e;
        return absl::OkStatus();
    }
  }

  absl::StatusOr<Node> ParseAtom() {
    const uint32_t c = p_[i_++];
    switch (c) {
      case '(': {
        Node::Kind kind = Node::kAlt;
        if (More() && Peek() == '?') {
          if (i_ + 1 < p_.size() && p_[i_ + 1] == ':') {
            i_ += 2;
          } else if (i_ + 1 < p_.size() && p_[i_ + 1] == '!') {
            i_ += 2;
            kind = Node::kNegLook;
          } else {
            return Error("unsupported group");
          }
        }
        ASSIGN_OR_RETURN(Node body, ParseAlt());
        if (!More() || Peek() != ')') return Error("missing ')'");
        ++i_;
        if (kind == Node::kNegLook) {
          Node look{Node::kNegLook};
          look.children.push_back(std::move(body));
          return look;
        }
        return body;
      }
      case '[':
        return ParseBracket();
      case '$':
        return Node{Node::kEnd};
      case '.': {
        Regex::Class any;
        any.negated = true;
        any.ranges.push_back({'\n', '\n'});
        return ClassNode(std::move(any));
      }
      case '\\': {
        Regex::Class k;
        bool is_literal = false;
        uint32_t lit;
        RETURN_IF_ERROR(ParseEscape(&k, &is_literal, &lit));
        if (is_literal) k.ranges.push_back({lit, lit});
        return ClassNode(std::move(k));
      }
      case '^':
        return Error("'^' is not supported");
      default: {
        Regex::Class k;
        k.ranges.push_back({c, c});
        return ClassNode(std::move(k));
      }
    }
  }

  absl::StatusOr<Node> ParseBracket() {
    Regex::Class k;
    if (More() && Peek() == '^') {
      k.negated = true;
      ++i_;
    }
    bool first = true;
    while (More() && (Peek() != ']' || first)) {
      first = false;
      uint32_t lo = p_[i_++];
      if (lo == '\\') {
        bool is_literal = false;
        RETURN_IF_ERROR(ParseEscape(&k, &is_literal, &lo));
        if (!is_literal) continue;
      }
      uint32_t hi = lo;
      if (i_ + 1 < p_.size() && Peek() == '-' && p_[i_ + 1] != ']') {
        ++i_;
        hi = p_[i_++];
        if (hi == '\\') {
          bool is_literal = false;
          RETURN_IF_ERROR(ParseEscape(&k, &is_literal, &hi));
          if (!is_literal) return Error("class escape as range end");
        }
        if (hi < lo) return Error("reversed range");
      }
      k.ranges.push_back({lo, hi});
    }
    if (!More()) return Error("missing ']'");
    ++i_;
    return ClassNode(std::move(k));
  }

  std::vector<uint32_t> p_;
  size_t i_ = 0;
  std::vector<Regex::Class>* classes_;
};

class Emitter {
 public:
  explicit Emitter(std::vector<Regex::Inst>* prog) : prog_(prog) {}

  int Emit(Regex::Inst::Op op, int x = 0, int y = 0) {
    prog_->push_back({op, x, y});
    return static_cast<int>(prog_->size()) - 1;
  }
  int Here() const { return static_cast<int>(prog_->size()); }

  void Gen(const Node& n) {
    using I = Regex::Inst;
    switch (n.kind) {
      case Node::kClass:
        Emit(I::kClass, n.class_index);
        break;
      case Node::kEnd:
        Emit(I::kEnd);
        break;
      case Node::kSeq:
        for (const Node& c : n.children) Gen(c);
        break;
      case Node::kAlt: {
        if (n.children.size() == 1) {
          Gen(n.children[0]);
          break;
        }
        std::vector<int> jumps;
        for (size_t i = 0; i < n.children.size(); ++i) {
          if (i + 1 < n.children.size()) {
            const int split = Emit(I::kSplit);
            (*prog_)[split].x = Here();
            Gen(n.children[i]);
            jumps.push_back(Emit(I::kJump));
            (*prog_)[split].y = Here();
          } else {
            Gen(n.children[i]);
          }
        }
        for (int j : jumps) (*prog_)[j].x = Here();
        break;
      }
      case Node::kRepeat: {
        const Node& body = n.children[0];
        for (int i = 0; i < n.min; ++i) Gen(body);
        if (n.max < 0) {
          // L: split body, out; body; jump L
          const int split = Emit(I::kSplit);
          (*prog_)[split].x = Here();
          Gen(body);
          Emit(I::kJump, split);
          (*prog_)[split].y = Here();
        } else {
          std::vector<int> splits;
          for (int i = n.min; i < n.max; ++i) {
            const int split = Emit(I::kSplit);
            (*prog_)[split].x = Here();
            splits.push_back(split);
            Gen(body);
          }
          for (int s : splits) (*prog_)[s].y = Here();
        }
        break;
      }
      case Node::kNegLook: {
        const int look = Emit(I::kNegLook);
        (*prog_)[look].x = Here();
        Gen(n.children[0]);
        Emit(I::kMatch);
        (*prog_)[look].y = Here();
        break;
      }
    }
  }

 private:
  std::vector<Regex::Inst>* prog_;
};

}  // namespace

absl::StatusOr<Regex> Regex::Compile(absl::string_view pattern) {
  Regex re;
  Parser parser(DecodeUtf8(pattern), &re.classes_);
  ASSIGN_OR_RETURN(Node root, parser.ParseAll());
  Emitter emitter(&re.program_);
  emitter.Gen(root);
  emitter.Emit(Inst::kMatch);
  return re;
}

bool Regex::Run(int pc, const uint32_t* text, int sp, int end,
                int* match_end) const {
  // Explicit backtracking stack of (pc, sp); the preferred branch runs first,
  // so the first Match reached is the leftmost-first (ECMAScript) match.
  // The stack is shared with nested lookahead runs, which use it above `base`.
  static thread_local std::vector<std::pair<int, int>> stack;
  using Thread = std::pair<int, int>;
  const size_t base = stack.size();
  stack.push_back({pc, sp});
  while (stack.size() > base) {
    Thread t = stack.back();
    stack.pop_back();
    while (true) {
      const Inst& in = program_[t.first];
      if (in.op == Inst::kClass) {
        if (t.second >= end || !classes_[in.x].Matches(text[t.second])) break;
        ++t.second;
        ++t.first;
      } else if (in.op == Inst::kSplit) {
        stack.push_back({in.y, t.second});
        t.first = in.x;
      } else if (in.op == Inst::kJump) {
        t.first = in.x;
      } else if (in.op == Inst::kEnd) {
        if (t.second != end) break;
        ++t.first;
      } else if (in.op == Inst::kNegLook) {
        int unused;
        if (Run(in.x, text, t.second, end, &unused)) break;
        t.first = in.y;
      } else {  // kMatch
        *match_end = t.second;
        stack.resize(base);
        return true;
      }
    }
  }
  return false;
}

int Regex::MatchAt(const uint32_t* text, int pos, int end) const {
  int match_end;
  if (!Run(0, text, pos, end, &match_end)) return -1;
  return match_end - pos;
}

void Regex::Split(const uint32_t* text, int begin, int end,
                  std::vector<int>* piece_ends) const {
  int gap_start = begin;
  int pos = begin;
  while (pos < end) {
    const int len = MatchAt(text, pos, end);
    if (len <= 0) {
      ++pos;
      continue;
    }
    if (gap_start < pos) piece_ends->push_back(pos);
    pos += len;
    piece_ends->push_back(pos);
    gap_start = pos;
  }
  if (gap_start < end) piece_ends->push_back(end);
}

}  // namespace lumen::engine
