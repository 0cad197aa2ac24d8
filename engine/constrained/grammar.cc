#include "engine/constrained/grammar.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lumen::engine::constrained {

namespace {

std::string ByteSetToString(const ByteSet& set) {
  std::string out = "[";
  int b = 0;
  while (b < 256) {
    if (!set.Has(static_cast<uint8_t>(b))) {
      ++b;
      continue;
    }
    int e = b;
    while (e + 1 < 256 && set.Has(static_cast<uint8_t>(e + 1))) ++e;
    absl::StrAppendFormat(&out, "\\x%02X", b);
    if (e > b) absl::StrAppendFormat(&out, "-\\x%02X", e);
    b = e + 1;
  }
  return out + "]";
}

}  // namespace

std::string Grammar::ToString() const {
  std::string out;
  for (const Rule& r : rules_) {
    absl::StrAppend(&out, r.name, " ::=");
    for (size_t a = 0; a < r.alternatives.size(); ++a) {
      if (a > 0) absl::StrAppend(&out, " |");
      for (int32_t pos = r.alternatives[a];
           elements_[pos].kind != ElementKind::kEnd; ++pos) {
        const Element& e = elements_[pos];
        if (e.kind == ElementKind::kBytes) {
          absl::StrAppend(&out, " ", ByteSetToString(byte_sets_[e.index]));
        } else {
          absl::StrAppend(&out, " ", rules_[e.index].name);
        }
      }
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

int32_t GrammarBuilder::AddRule(std::string name, int32_t origin) {
  const int32_t id = static_cast<int32_t>(rules_.size());
  Rule r;
  r.name = std::move(name);
  r.origin = origin < 0 ? id : origin;
  rules_.push_back(std::move(r));
  alternatives_.emplace_back();
  return id;
}

int32_t GrammarBuilder::AddByteSet(const ByteSet& set) {
  auto [it, inserted] =
      byte_set_ids_.try_emplace(set, static_cast<int32_t>(byte_sets_.size()));
  if (inserted) byte_sets_.push_back(set);
  return it->second;
}

absl::Status GrammarBuilder::AddAlternative(int32_t rule,
                                            std::span<const Element> elements) {
  num_elements_ += static_cast<int64_t>(elements.size()) + 1;
  if (num_elements_ > kMaxGrammarElements) {
    return absl::ResourceExhaustedError(
        absl::StrCat("grammar is too large (more than ", kMaxGrammarElements,
                     " elements); lower its repetition counts"));
  }
  alternatives_[rule].emplace_back(elements.begin(), elements.end());
  return absl::OkStatus();
}

absl::StatusOr<Grammar> GrammarBuilder::Build(int32_t root) && {
  const int32_t n = num_rules();
  auto origin_name = [&](int32_t id) -> const std::string& {
    return rules_[rules_[id].origin].name;
  };

  // Rules reachable from the root.
  std::vector<bool> reachable(n, false);
  std::vector<int32_t> work = {root};
  reachable[root] = true;
  while (!work.empty()) {
    const int32_t r = work.back();
    work.pop_back();
    if (alternatives_[r].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule '", origin_name(r), "' has no alternatives"));
    }
    for (const auto& alt : alternatives_[r]) {
      for (const Element& e : alt) {
        if (e.kind == ElementKind::kRule && !reachable[e.index]) {
          reachable[e.index] = true;
          work.push_back(e.index);
        }
      }
    }
  }

  // Nullable and productive rules (fixed points).
  std::vector<bool> nullable(n, false), productive(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (int32_t r = 0; r < n; ++r) {
      for (const auto& alt : alternatives_[r]) {
        bool all_nullable = true, all_productive = true;
        for (const Element& e : alt) {
          all_nullable =
              all_nullable && e.kind == ElementKind::kRule && nullable[e.index];
          all_productive = all_productive && (e.kind == ElementKind::kBytes
                                                  ? !byte_sets_[e.index].Empty()
                                                  : productive[e.index]);
        }
        if (all_nullable && !nullable[r]) nullable[r] = changed = true;
        if (all_productive && !productive[r]) productive[r] = changed = true;
      }
    }
  }
  // Name a rule on a cycle of unproductive rules (the cause), not merely
  // one that uses such a rule.
  auto on_unproductive_cycle = [&](int32_t r0) {
    std::vector<bool> seen(n, false);
    std::vector<int32_t> stack = {r0};
    while (!stack.empty()) {
      const int32_t r = stack.back();
      stack.pop_back();
      for (const auto& alt : alternatives_[r]) {
        for (const Element& e : alt) {
          if (e.kind != ElementKind::kRule || productive[e.index]) continue;
          if (e.index == r0) return true;
          if (!seen[e.index]) {
            seen[e.index] = true;
            stack.push_back(e.index);
          }
        }
      }
    }
    return false;
  };
  int32_t unproductive = -1;
  for (int32_t r = 0; r < n; ++r) {
    if (!reachable[r] || productive[r]) continue;
    if (unproductive < 0) unproductive = r;
    if (on_unproductive_cycle(r)) {
      unproductive = r;
      break;
    }
  }
  if (unproductive >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rule '", origin_name(unproductive),
                     "' can never complete: each of its alternatives needs "
                     "itself or matches nothing"));
  }

  // Left recursion: a rule that reaches itself before consuming a byte would
  // make the matcher's stacks grow forever.
  std::vector<std::vector<int32_t>> starts(n);  // rules at an alternative start
  for (int32_t r = 0; r < n; ++r) {
    for (const auto& alt : alternatives_[r]) {
      for (const Element& e : alt) {
        if (e.kind == ElementKind::kBytes) break;
        starts[r].push_back(e.index);
        if (!nullable[e.index]) break;
      }
    }
  }
  enum Color : uint8_t { kWhite, kGrey, kBlack };
  std::vector<Color> color(n, kWhite);
  for (int32_t r0 = 0; r0 < n; ++r0) {
    if (!reachable[r0] || color[r0] != kWhite) continue;
    // Iterative DFS: (rule, next child index).
    std::vector<std::pair<int32_t, size_t>> stack = {{r0, 0}};
    color[r0] = kGrey;
    while (!stack.empty()) {
      auto& [r, i] = stack.back();
      if (i == starts[r].size()) {
        color[r] = kBlack;
        stack.pop_back();
        continue;
      }
      const int32_t next = starts[r][i++];
      if (color[next] == kGrey) {
        return absl::InvalidArgumentError(absl::StrCat(
            "rule '", origin_name(next),
            "' is left-recursive (it can reach itself before matching any "
            "character); write the repetition with * or + instead, and do not "
            "repeat something that can be empty"));
      }
      if (color[next] == kWhite) {
        color[next] = kGrey;
        stack.push_back({next, 0});
      }
    }
  }

  Grammar g;
  g.root_ = root;
  g.byte_sets_ = std::move(byte_sets_);
  g.rules_ = std::move(rules_);
  g.elements_.reserve(num_elements_);
  for (int32_t r = 0; r < n; ++r) {
    for (const auto& alt : alternatives_[r]) {
      g.rules_[r].alternatives.push_back(
          static_cast<int32_t>(g.elements_.size()));
      g.elements_.insert(g.elements_.end(), alt.begin(), alt.end());
      g.elements_.push_back({ElementKind::kEnd, 0});
    }
  }
  return g;
}

}  // namespace lumen::engine::constrained
