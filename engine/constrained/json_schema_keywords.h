#pragma once
// The vocabulary of the JSON Schema translator: which keywords exist and to
// which types they apply, the fixed GBNF rules of JSON values, the regular
// expressions of supported string formats, and small naming helpers. Pure;
// any thread.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lumen::engine::constrained {

// A fixed rule (JSON values, strings, whitespace), added on first use with
// the rules it needs.
struct Primitive {
  const char* name;
  const char* body;
  std::vector<const char*> needs;
};
const std::vector<Primitive>& Primitives();

// Regular expressions of the supported "format" values.
const std::map<std::string, std::string>& Formats();

// Keywords that carry no constraint (title, description, $defs, ...).
const std::set<std::string>& Annotations();

enum class KeywordGroup { kObject, kArray, kString, kNumeric };
// Type-specific keywords and the type they apply to.
const std::map<std::string, KeywordGroup>& TypeKeywords();
bool IsKnownKeyword(const std::string& keyword);
bool GroupAppliesTo(KeywordGroup group, const std::string& type);

// JSON pointer segment escaping (~ and /).
std::string PointerSegment(const std::string& key);
// A GBNF rule name ([a-zA-Z0-9-]) derived from `hint`.
std::string Sanitize(absl::string_view hint);
bool IsRuleName(const std::string& expr);
// "*", "{2,5}", ... for lo..hi repetitions (hi < 0: unbounded).
std::string Quantifier(int lo, int hi);

}  // namespace lumen::engine::constrained
