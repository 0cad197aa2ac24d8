#pragma once
// Grammar: the context-free grammar over bytes that every constraint (GBNF,
// regular expression, JSON Schema) compiles to, and the builder that checks
// it can drive a matcher. A rule is a list of alternatives; an alternative
// is a run of elements (a byte set, or a reference to a rule) ended by
// kEnd. Character classes have already become UTF-8 byte sequences, so the
// matcher works on bytes only. Immutable once built; any thread.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace lumen::engine::constrained {

// A set of byte values.
struct ByteSet {
  uint64_t bits[4] = {0, 0, 0, 0};

  bool Has(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
  void Add(uint8_t b) { bits[b >> 6] |= uint64_t{1} << (b & 63); }
  void AddRange(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) Add(static_cast<uint8_t>(b));
  }
  bool Empty() const { return (bits[0] | bits[1] | bits[2] | bits[3]) == 0; }
  bool operator==(const ByteSet&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const ByteSet& s) {
    return H::combine(std::move(h), s.bits[0], s.bits[1], s.bits[2], s.bits[3]);
  }
};

enum class ElementKind : uint8_t {
  kBytes,  // one byte from byte_set(index)
  kRule,   // rule(index)
  kEnd,    // end of an alternative
};

struct Element {
  ElementKind kind;
  int32_t index;  // byte set or rule id; unused for kEnd
};

struct Rule {
  std::string name;
  // Start element of each alternative (each run ends with kEnd).
  std::vector<int32_t> alternatives;
  // For rules a compiler introduced (repetitions, groups, classes): the rule
  // of the source text they came from, for error messages. Else own id.
  int32_t origin = 0;
};

class Grammar {
 public:
  const std::vector<Element>& elements() const { return elements_; }
  const Element& element(int32_t pos) const { return elements_[pos]; }
  const ByteSet& byte_set(int32_t index) const { return byte_sets_[index]; }
  const Rule& rule(int32_t id) const { return rules_[id]; }
  int32_t num_rules() const { return static_cast<int32_t>(rules_.size()); }
  int32_t root() const { return root_; }

  // The grammar in GBNF-like notation (byte sets as [\xHH-\xHH]), for tests
  // and debugging.
  std::string ToString() const;

 private:
  friend class GrammarBuilder;
  std::vector<Element> elements_;  // [num_elements]
  std::vector<ByteSet> byte_sets_;
  std::vector<Rule> rules_;
  int32_t root_ = 0;
};

// Limits that keep a hostile grammar from exhausting memory at compile time.
inline constexpr int32_t kMaxGrammarElements = 1 << 21;

// Assembles a Grammar and checks that a matcher can run it. Not thread-safe.
class GrammarBuilder {
 public:
  // A new rule with no alternatives yet; `origin` names the source rule it
  // belongs to (-1: itself).
  int32_t AddRule(std::string name, int32_t origin = -1);
  const std::string& RuleName(int32_t id) const { return rules_[id].name; }
  // Interned byte set.
  int32_t AddByteSet(const ByteSet& set);
  // Appends an alternative (no kEnd in `elements`; it is added).
  // ResourceExhausted past kMaxGrammarElements.
  absl::Status AddAlternative(int32_t rule, std::span<const Element> elements);
  int32_t num_rules() const { return static_cast<int32_t>(rules_.size()); }

  // Checks the grammar from `root` and returns it. InvalidArgument names
  // a left-recursive rule (the matcher would loop), a rule that can never
  // finish (every alternative needs itself) or a rule with no alternatives.
  absl::StatusOr<Grammar> Build(int32_t root) &&;

 private:
  std::vector<std::vector<std::vector<Element>>> alternatives_;  // per rule
  std::vector<Rule> rules_;
  std::vector<ByteSet> byte_sets_;
  absl::flat_hash_map<ByteSet, int32_t> byte_set_ids_;
  int64_t num_elements_ = 0;
};

}  // namespace lumen::engine::constrained
