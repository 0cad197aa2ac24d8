// Token trie and masks on real vocabularies (llama SPM with byte fallback,
// GPT-2 and DeepSeek byte-level BPE): token bytes against a decoder written
// here, and every mask of a random walk against a reference computed
// directly from the token strings.

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/constrained/constraint.h"
#include "engine/constrained/constraint_cache.h"
#include "engine/constrained/token_trie.h"
#include "gtest/gtest.h"
#include "tests/engine/constrained_test_util.h"
#include "tests/test_support.h"

namespace lumen::engine::constrained {
namespace {

using ::lumen::testing::LoadVocab;
using ::lumen::testing::MaskHas;

// GPT-2's byte <-> code point table, written from its definition: printable
// Latin-1 bytes map to themselves, the others to 256, 257, ... in order.
std::map<uint32_t, uint8_t> Gpt2Decoder() {
  std::map<uint32_t, uint8_t> decode;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable =
        (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    decode[printable ? b : next++] = static_cast<uint8_t>(b);
  }
  return decode;
}

// Code points of valid UTF-8 (vocabulary texts are).
std::vector<uint32_t> CodePoints(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto lead = static_cast<uint8_t>(s[i]);
    const int n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? lead : lead & (0x7F >> n);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
    out.push_back(cp);
    i += n;
  }
  return out;
}

// The bytes a token should produce, from its vocabulary entry alone.
std::string ReferenceBytes(const Vocab& v, int32_t id) {
  const std::string& text = v.tokens[id];
  switch (v.types[id]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUnused:
      return "";
    case TokenType::kByte:
      return std::string(
          1, static_cast<char>(std::stoi(text.substr(3, 2), nullptr, 16)));
    case TokenType::kUserDefined:
      return text;
    case TokenType::kNormal:
      break;
  }
  if (v.type == VocabType::kBpe) {
    static const auto* decode = new std::map<uint32_t, uint8_t>(Gpt2Decoder());
    std::string out;
    for (uint32_t cp : CodePoints(text))
      out += static_cast<char>(decode->at(cp));
    return out;
  }
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "\xe2\x96\x81") == 0) {  // U+2581
      out += ' ';
      i += 3;
    } else {
      out += text[i++];
    }
  }
  return out;
}

class TrieVocabTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TrieVocabTest, TokenBytesAndTrieShape) {
  auto tokenizer = LoadVocab(GetParam());
  ASSERT_NE(tokenizer, nullptr);
  const Vocab& v = tokenizer->vocab();
  auto trie = TokenTrie::Build(*tokenizer);
  ASSERT_EQ(trie->vocab_size(), v.size());
  EXPECT_TRUE(trie->IsEndOfGeneration(v.eos));
  std::set<int32_t> in_trie;
  for (int32_t i = 0; i < trie->num_tokens(); ++i) {
    EXPECT_TRUE(in_trie.insert(trie->tokens()[i]).second);
  }
  int32_t expected_in_trie = 0;
  for (int32_t id = 0; id < v.size(); ++id) {
    const std::string want =
        trie->IsEndOfGeneration(id) ? "" : ReferenceBytes(v, id);
    ASSERT_EQ(std::string(trie->TokenBytes(id)), want) << "token " << id;
    EXPECT_EQ(in_trie.contains(id), !want.empty()) << id;
    expected_in_trie += !want.empty();
  }
  EXPECT_EQ(trie->num_tokens(), expected_in_trie);
  // Preorder: a node's subtree holds exactly the deeper nodes that follow,
  // and each node's path spells the bytes of the tokens ending there.
  const TokenTrie::Node* nodes = trie->nodes();
  std::vector<std::string> path = {""};
  for (int32_t i = 1; i < trie->num_nodes(); ++i) {
    const int32_t end = nodes[i].subtree_end;
    ASSERT_GT(end, i);
    if (end < trie->num_nodes()) {
      ASSERT_LE(nodes[end].depth, nodes[i].depth);
    }
    ASSERT_TRUE(end == i + 1 || nodes[i + 1].depth == nodes[i].depth + 1);
    for (int32_t j = i + 1; j < end; ++j) {
      ASSERT_GT(nodes[j].depth, nodes[i].depth);
    }
    path.resize(nodes[i].depth);
    path.push_back(path.back() + static_cast<char>(nodes[i].byte));
    for (int32_t k = nodes[i].token_begin; k < nodes[i + 1].token_begin; ++k) {
      ASSERT_EQ(std::string(trie->TokenBytes(trie->tokens()[k])), path.back());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, TrieVocabTest,
                         ::testing::Values("llama-spm", "gpt-2", "deepseek-llm",
                                           "phi-3"));

TEST(TrieTest, SpmSpacesAndByteFallback) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  auto trie = TokenTrie::Build(*tokenizer);
  const Vocab& v = tokenizer->vocab();
  EXPECT_EQ(std::string(trie->TokenBytes(v.Find("\xe2\x96\x81the"))), " the");
  EXPECT_EQ(std::string(trie->TokenBytes(v.Find("<0x0A>"))), "\n");
  EXPECT_EQ(std::string(trie->TokenBytes(v.Find("<0xE6>"))), "\xe6");
  EXPECT_TRUE(trie->TokenBytes(v.bos).empty());  // control: never allowed
}

// Reference masks for a constraint that is a finite set of words: a token is
// allowed when the text so far plus its bytes is a prefix of some word; EOS
// when the text so far is a word.
std::vector<uint32_t> ReferenceMask(const TokenTrie& trie,
                                    const std::vector<std::string>& words,
                                    const std::string& done) {
  std::vector<uint32_t> mask(trie.mask_words(), 0);
  for (int32_t t = 0; t < trie.vocab_size(); ++t) {
    const std::string next = done + std::string(trie.TokenBytes(t));
    if (next.size() == done.size()) continue;
    for (const std::string& w : words) {
      if (w.compare(0, next.size(), next) == 0 && w.size() >= next.size()) {
        mask[t >> 5] |= 1u << (t & 31);
        break;
      }
    }
  }
  for (const std::string& w : words) {
    if (w == done) {
      for (int32_t e : trie.end_of_generation()) mask[e >> 5] |= 1u << (e & 31);
    }
  }
  return mask;
}

class MaskWalkTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MaskWalkTest, EveryMaskEqualsTheReference) {
  auto tokenizer = LoadVocab(GetParam());
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<std::string> words = {
      "hello world",
      "help",
      "h\xc3\xa9llo",                          // é
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",  // 日本語
      "emoji \xf0\x9f\x98\x80!",
      "a\nb\tc",
      "{\"key\": [1, 2]}"};
  std::string regex;
  for (const std::string& w : words) {
    if (!regex.empty()) regex += "|";
    for (char c : w) {
      if (std::string("{}[]()|.*+?\\^$").find(c) != std::string::npos) {
        regex += '\\';
      }
      regex += c == '\n'   ? std::string("\\n")
               : c == '\t' ? "\\t"
                           : std::string(1, c);
    }
  }
  ConstraintCache cache(*tokenizer);
  auto compiled = cache.Get({ConstraintKind::kRegex, regex});
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  const TokenTrie& trie = *cache.trie();
  std::vector<uint32_t> mask(trie.mask_words());
  for (int seed = 0; seed < 12; ++seed) {
    auto state = (*compiled)->NewState();
    ASSERT_TRUE(state.ok());
    std::mt19937 rng(seed);
    std::string done;
    for (int step = 0; step < 64; ++step) {
      ASSERT_TRUE(state->FillAllowedMask(mask).ok());
      const std::vector<uint32_t> want = ReferenceMask(trie, words, done);
      ASSERT_EQ(mask, want) << GetParam() << " after \"" << done << "\"";
      std::vector<int32_t> allowed;
      for (int32_t t = 0; t < trie.vocab_size(); ++t) {
        if (MaskHas(mask, t)) allowed.push_back(t);
      }
      ASSERT_FALSE(allowed.empty());
      const int32_t t = allowed[rng() % allowed.size()];
      ASSERT_TRUE(state->AcceptToken(t).ok());
      if (trie.IsEndOfGeneration(t)) {
        EXPECT_TRUE(std::find(words.begin(), words.end(), done) != words.end());
        EXPECT_TRUE(state->IsEnded());
        break;
      }
      done += std::string(trie.TokenBytes(t));
      EXPECT_EQ(state->IsAccepting(),
                std::find(words.begin(), words.end(), done) != words.end());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, MaskWalkTest,
                         ::testing::Values("llama-spm", "gpt-2",
                                           "deepseek-llm"));

TEST(MaskTest, ByteFallbackCoversMultiByteCharacters) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  const Vocab& v = tokenizer->vocab();
  ConstraintCache cache(*tokenizer);
  // 語 (E8 AA 9E) is not a whole token in the llama vocabulary: it can only
  // be written with byte tokens.
  auto compiled = cache.Get({ConstraintKind::kRegex, "\xe8\xaa\x9e+"});
  ASSERT_TRUE(compiled.ok());
  auto state = (*compiled)->NewState();
  ASSERT_TRUE(state.ok());
  std::vector<uint32_t> mask(cache.trie()->mask_words());
  ASSERT_TRUE(state->FillAllowedMask(mask).ok());
  EXPECT_TRUE(MaskHas(mask, v.Find("<0xE8>")));
  EXPECT_FALSE(MaskHas(mask, v.Find("<0xAA>")));
  EXPECT_FALSE(MaskHas(mask, v.eos));
  for (const char* byte : {"<0xE8>", "<0xAA>", "<0x9E>"}) {
    EXPECT_FALSE(state->IsAccepting());
    ASSERT_TRUE(state->AcceptToken(v.Find(byte)).ok()) << byte;
  }
  EXPECT_TRUE(state->IsAccepting());
  EXPECT_FALSE(state->IsComplete());
  ASSERT_TRUE(state->FillAllowedMask(mask).ok());
  EXPECT_TRUE(MaskHas(mask, v.eos));
  EXPECT_TRUE(MaskHas(mask, v.Find("<0xE8>")));
  EXPECT_FALSE(MaskHas(mask, v.bos));
  EXPECT_THAT(state->AcceptToken(v.Find("<0xAA>")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("is not allowed")));
  ASSERT_TRUE(state->AcceptToken(v.eos).ok());
  EXPECT_THAT(state->FillAllowedMask(mask),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::HasSubstr("already ended")));
}

TEST(MaskTest, EosOnlyWhenAcceptingAndCompleteWhenNothingFollows) {
  auto tokenizer = LoadVocab("gpt-2");
  ASSERT_NE(tokenizer, nullptr);
  const Vocab& v = tokenizer->vocab();
  ConstraintCache cache(*tokenizer);
  auto compiled = cache.Get({ConstraintKind::kGrammar, "root ::= \"yes\""});
  ASSERT_TRUE(compiled.ok());
  auto state = (*compiled)->NewState();
  ASSERT_TRUE(state.ok());
  EXPECT_THAT(state->AcceptToken(v.eos),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("before the output matches")));
  ASSERT_TRUE(state->AcceptToken(v.Find("yes")).ok());
  EXPECT_TRUE(state->IsComplete());
  std::vector<uint32_t> mask(cache.trie()->mask_words() + 3, ~0u);
  ASSERT_TRUE(state->FillAllowedMask(mask).ok());
  int allowed = 0;
  for (int32_t t = 0; t < static_cast<int32_t>(mask.size()) * 32; ++t) {
    allowed += MaskHas(mask, t);
  }
  EXPECT_EQ(allowed, 1);
  EXPECT_TRUE(MaskHas(mask, v.eos));
  std::vector<uint32_t> small(cache.trie()->mask_words() - 1);
  EXPECT_THAT(state->FillAllowedMask(small),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("is smaller than")));
}

TEST(MaskTest, CopiedStatesGoTheirOwnWays) {
  auto tokenizer = LoadVocab("gpt-2");
  ASSERT_NE(tokenizer, nullptr);
  const Vocab& v = tokenizer->vocab();
  ConstraintCache cache(*tokenizer);
  auto c = cache.Get({ConstraintKind::kRegex, "(cat|dog)s?"});
  ASSERT_TRUE(c.ok());
  auto a = (*c)->NewState();
  ASSERT_TRUE(a.ok());
  ConstraintState b = *a;  // a fork, e.g. for speculative or beam search
  ASSERT_TRUE(a->AcceptToken(v.Find("cat")).ok());
  ASSERT_TRUE(b.AcceptToken(v.Find("dog")).ok());
  ConstraintState c2 = b;
  ASSERT_TRUE(c2.AcceptToken(v.Find("s")).ok());
  std::vector<uint32_t> mask(cache.trie()->mask_words());
  ASSERT_TRUE(b.FillAllowedMask(mask).ok());
  EXPECT_TRUE(MaskHas(mask, v.Find("s")));
  EXPECT_TRUE(b.IsAccepting());
  EXPECT_FALSE(b.IsComplete());
  EXPECT_TRUE(c2.IsComplete());
  EXPECT_THAT(a->AcceptToken(v.Find("dog")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("not allowed")));
}

TEST(MaskTest, OutgrownMatchersAreReplacedForNewRequestsOnly) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  const Vocab& v = tokenizer->vocab();
  ConstraintCacheOptions options;
  options.limits.budget_bytes = 1;  // every matcher is over budget at once
  ConstraintCache cache(*tokenizer, options);
  auto c = cache.Get({ConstraintKind::kRegex, "(ab)+"});
  ASSERT_TRUE(c.ok());
  auto first = (*c)->NewState();
  ASSERT_TRUE(first.ok());
  std::vector<uint32_t> mask(cache.trie()->mask_words());
  ASSERT_TRUE(first->FillAllowedMask(mask).ok());
  EXPECT_EQ((*c)->stats().mask_walks, 1);  // the new request's fresh matcher
  auto second = (*c)->NewState();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*c)->stats().mask_walks, 0);  // yet another fresh one
  // Both requests go on, each with its own matcher.
  for (ConstraintState* s : {&*first, &*second}) {
    ASSERT_TRUE(s->AcceptToken(v.Find("ab")).ok());
    ASSERT_TRUE(s->FillAllowedMask(mask).ok());
    EXPECT_TRUE(MaskHas(mask, v.eos));
    EXPECT_TRUE(MaskHas(mask, v.Find("ab")));
  }
}

TEST(MaskTest, MatcherLimitsAreResourceExhausted) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  ConstraintCacheOptions options;
  options.limits.automaton.max_states = 40;
  ConstraintCache cache(*tokenizer, options);
  // Counting to 200 needs more states than allowed.
  auto c = cache.Get({ConstraintKind::kRegex, "[a-z]{200}"});
  ASSERT_TRUE(c.ok()) << c.status();
  auto state = (*c)->NewState();
  ASSERT_TRUE(state.ok());
  std::vector<uint32_t> mask(cache.trie()->mask_words());
  absl::Status status;
  for (int i = 0; i < 200 && status.ok(); ++i) {
    status = state->FillAllowedMask(mask);
    if (status.ok()) status = state->AcceptToken(tokenizer->vocab().Find("a"));
  }
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted,
                               ::testing::HasSubstr("exceeded 40 states")));
}

TEST(CacheTest, SameTextCompilesOnceAndErrorsAreNotCached) {
  auto tokenizer = LoadVocab("llama-spm");
  ASSERT_NE(tokenizer, nullptr);
  ConstraintCacheOptions options;
  options.capacity = 2;
  ConstraintCache cache(*tokenizer, options);
  auto a = cache.Get({ConstraintKind::kRegex, "[0-9]+"});
  auto b = cache.Get({ConstraintKind::kRegex, "[0-9]+"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
  // The same text as another kind is another constraint.
  auto c = cache.Get({ConstraintKind::kGrammar, "root ::= [0-9]+"});
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->get(), c->get());
  EXPECT_THAT(cache.Get({ConstraintKind::kRegex, "("}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("missing ')'")));
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(cache.size(), 2u);
  // json_object ignores its text.
  auto o1 = cache.Get({ConstraintKind::kJsonObject, ""});
  auto o2 = cache.Get({ConstraintKind::kJsonObject, "ignored"});
  ASSERT_TRUE(o1.ok() && o2.ok());
  EXPECT_EQ(o1->get(), o2->get());
  EXPECT_EQ(cache.size(), 2u);  // capacity 2: the oldest went
}

TEST(CacheTest, ConcurrentGetsShareOneCompilation) {
  auto tokenizer = LoadVocab("gpt-2");
  ASSERT_NE(tokenizer, nullptr);
  ConstraintCache cache(*tokenizer);
  std::vector<std::thread> threads;
  std::vector<const CompiledConstraint*> got(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto c = cache.Get({ConstraintKind::kJsonObject, ""});
      ASSERT_TRUE(c.ok());
      // Each thread walks its own request through the shared constraint.
      auto state = (*c)->NewState();
      ASSERT_TRUE(state.ok());
      std::vector<uint32_t> mask(cache.trie()->mask_words());
      for (const char* piece : {"{", "\"", "a", "\":", "1", "}"}) {
        ASSERT_TRUE(state->FillAllowedMask(mask).ok());
        const int32_t t = tokenizer->vocab().Find(piece);
        ASSERT_TRUE(MaskHas(mask, t)) << piece;
        ASSERT_TRUE(state->AcceptToken(t).ok());
      }
      EXPECT_TRUE(state->IsComplete());
      got[i] = c->get();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 1; i < 4; ++i) EXPECT_EQ(got[i], got[0]);
}

}  // namespace
}  // namespace lumen::engine::constrained
