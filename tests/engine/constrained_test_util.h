#pragma once
// Helpers for the constrained-decoding tests: run a compiled grammar over a
// string, byte by byte, straight on the automaton (no tokens involved).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/constrained/constraint.h"
#include "engine/constrained/grammar.h"
#include "engine/constrained/grammar_automaton.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::testing {

// Whether the grammar matches all of `text`.
inline bool GrammarMatches(const engine::constrained::Grammar& grammar,
                           const std::string& text) {
  using engine::constrained::GrammarAutomaton;
  auto a = GrammarAutomaton::Create(
      std::make_shared<engine::constrained::Grammar>(grammar), {});
  if (!a.ok()) return false;
  int32_t s = (*a)->initial_state();
  for (char c : text) {
    s = (*a)->Next(s, static_cast<uint8_t>(c));
    if (s == GrammarAutomaton::kDead) return false;
  }
  return (*a)->IsAccepting(s);
}

// Compiles `spec` (the test fails on errors through the returned status).
inline absl::StatusOr<bool> SpecMatches(
    const engine::constrained::ConstraintSpec& spec, const std::string& text) {
  auto g = engine::constrained::CompileConstraintGrammar(spec);
  if (!g.ok()) return g.status();
  return GrammarMatches(*g, text);
}

// The tokenizer of ../shared/testdata/vocab/ggml-vocab-NAME.gguf (null and a
// test failure when it cannot be read).
inline std::unique_ptr<engine::Tokenizer> LoadVocab(const std::string& name) {
  auto file = engine::GgufFile::Open(
      TestDataPath("vocab/ggml-vocab-" + name + ".gguf"));
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto tokenizer = engine::Tokenizer::FromGguf(**file);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

inline bool MaskHas(const std::vector<uint32_t>& mask, int32_t token) {
  return (mask[token >> 5] >> (token & 31)) & 1;
}

}  // namespace lumen::testing
