// Sampler and stop strings: table-driven.

#include "engine/sampler.h"

#include <cmath>
#include <map>
#include <set>

#include "engine/stop_matcher.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

using ::testing::HasSubstr;

struct SampleCase {
  std::string name;
  SamplingParams params;
  std::vector<float> logits;
  std::vector<int32_t> history;
  std::set<int32_t> allowed;  // every draw must be one of these
};

class SamplerTableTest : public ::testing::TestWithParam<SampleCase> {};

TEST_P(SamplerTableTest, DrawsOnlyAllowedTokens) {
  const SampleCase& c = GetParam();
  Sampler sampler;
  std::set<int32_t> seen;
  for (int i = 0; i < 200; ++i) {
    SamplingParams p = c.params;
    p.seed = i;
    SamplerState state(p);
    for (int32_t t : c.history) state.Accept(t);
    std::vector<float> logits = c.logits;
    const int32_t t = sampler.Sample(logits, &state);
    EXPECT_TRUE(c.allowed.contains(t)) << c.name << " drew " << t;
    seen.insert(t);
  }
  // Sampling (not greedy) cases should reach every allowed token.
  if (c.params.temperature > 0) {
    EXPECT_EQ(seen, c.allowed) << c.name;
  }
}

SamplingParams P(float temperature, int top_k = 0, float top_p = 1,
                 float min_p = 0) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  return p;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SamplerTableTest,
    ::testing::Values(
        SampleCase{"greedy", P(0), {0.1f, 3.0f, 2.9f, -1.0f}, {}, {1}},
        SampleCase{"top_k 2", P(1.0f, 2), {1.0f, 3.0f, 2.9f, 2.8f}, {}, {1, 2}},
        SampleCase{
            "top_p", P(1.0f, 0, 0.6f), {0.0f, 5.0f, 4.9f, -9.0f}, {}, {1, 2}},
        SampleCase{"top_p keeps the head",
                   P(1.0f, 0, 0.5f),
                   {0.0f, 5.0f, 4.9f, -9.0f},
                   {},
                   {1}},
        SampleCase{"min_p",
                   P(1.0f, 0, 1.0f, 0.5f),
                   {0.0f, 2.0f, 1.9f, -3.0f},
                   {},
                   {1, 2}},
        SampleCase{"high temperature reaches all",
                   P(50.0f),
                   {0.0f, 1.0f, 0.5f},
                   {},
                   {0, 1, 2}},
        SampleCase{"repetition penalty flips greedy",
                   [] {
                     SamplingParams p = P(0);
                     p.repetition_penalty = 4.0f;
                     return p;
                   }(),
                   {0.0f, 2.0f, 1.0f},
                   {1},
                   {2}},
        SampleCase{"presence and frequency penalties",
                   [] {
                     SamplingParams p = P(0);
                     p.presence_penalty = 0.5f;
                     p.frequency_penalty = 0.5f;
                     return p;
                   }(),
                   {0.0f, 2.0f, 1.2f},
                   {1, 1},
                   {2}}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (char& ch : n) ch = isalnum(ch) ? ch : '_';
      return n;
    });

TEST(SamplerTest, SameSeedSameTokens) {
  Sampler a, b;
  SamplingParams p = P(1.0f);
  p.seed = 42;
  SamplerState sa(p), sb(p);
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = (i * 37 % 11) * 0.3f;
  for (int step = 0; step < 50; ++step) {
    std::vector<float> la = logits, lb = logits;
    EXPECT_EQ(a.Sample(la, &sa), b.Sample(lb, &sb));
  }
}

TEST(SamplerTest, LogprobsComeFromTheRawDistribution) {
  Sampler s;
  SamplerState state(P(0));
  std::vector<float> logits = {std::log(0.5f), std::log(0.25f),
                               std::log(0.25f)};
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;
  EXPECT_EQ(s.Sample(logits, &state, 2, &chosen, &top), 0);
  EXPECT_NEAR(chosen.logprob, std::log(0.5f), 1e-5);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].token, 0);
  EXPECT_NEAR(top[1].logprob, std::log(0.25f), 1e-5);
}

struct MaskedCase {
  std::string name;
  SamplingParams params;
  std::vector<float> logits;
  std::vector<int32_t> history;
  std::set<int32_t> mask;     // tokens the constraint allows
  std::set<int32_t> allowed;  // every draw must be one of these
};

std::vector<uint32_t> MaskOf(const std::set<int32_t>& tokens, size_t n) {
  std::vector<uint32_t> bits((n + 31) / 32, 0);
  for (int32_t t : tokens) bits[t / 32] |= 1u << (t % 32);
  return bits;
}

class MaskedSamplerTableTest : public ::testing::TestWithParam<MaskedCase> {};

TEST_P(MaskedSamplerTableTest, DrawsOnlyAllowedTokens) {
  const MaskedCase& c = GetParam();
  Sampler sampler;
  std::set<int32_t> seen;
  const std::vector<uint32_t> mask = MaskOf(c.mask, c.logits.size());
  for (int i = 0; i < 200; ++i) {
    SamplingParams p = c.params;
    p.seed = i;
    SamplerState state(p);
    for (int32_t t : c.history) state.Accept(t);
    std::vector<float> logits = c.logits;
    auto t = sampler.SampleMasked(logits, mask, &state);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_TRUE(c.allowed.contains(*t)) << c.name << " drew " << *t;
    seen.insert(*t);
  }
  if (c.params.temperature > 0) {
    EXPECT_EQ(seen, c.allowed) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MaskedSamplerTableTest,
    ::testing::Values(
        MaskedCase{"greedy takes the best allowed",
                   P(0),
                   {5.0f, 1.0f, 3.0f},
                   {},
                   {1, 2},
                   {2}},
        MaskedCase{"sampling reaches every allowed token and no other",
                   P(1.0f),
                   {1.0f, 1.0f, 1.0f, 1.0f},
                   {},
                   {0, 3},
                   {0, 3}},
        MaskedCase{"a far less likely token is still the only choice",
                   P(1.0f),
                   {0.0f, -60.0f, 0.0f},
                   {},
                   {1},
                   {1}},
        MaskedCase{"top_k counts allowed tokens only",
                   P(1.0f, 2),
                   {9.0f, 8.0f, 7.9f, 7.8f},
                   {},
                   {1, 2, 3},
                   {1, 2}},
        MaskedCase{"top_p over the constrained distribution",
                   P(1.0f, 0, 0.6f),
                   {10.0f, 5.0f, 4.9f, -9.0f},
                   {},
                   {1, 2, 3},
                   {1, 2}},
        MaskedCase{"min_p relative to the best allowed",
                   P(1.0f, 0, 1.0f, 0.5f),
                   {9.0f, 2.0f, 1.9f, -3.0f},
                   {},
                   {1, 2, 3},
                   {1, 2}},
        MaskedCase{"penalties never bring a masked token back",
                   [] {
                     SamplingParams p = P(0);
                     p.repetition_penalty = 4.0f;
                     p.presence_penalty = -100.0f;
                     return p;
                   }(),
                   {0.0f, 2.0f, 1.0f},
                   {0, 0},
                   {1, 2},
                   {1}},
        MaskedCase{"tokens past a word boundary",
                   P(1.0f),
                   std::vector<float>(70, 0.0f),
                   {},
                   {31, 32, 63, 64, 69},
                   {31, 32, 63, 64, 69}}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (char& ch : n) ch = isalnum(ch) ? ch : '_';
      return n;
    });

TEST(MaskedSamplerTest, FullMaskGivesTheSameTokensAsNoMask) {
  Sampler a, b;
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = (i * 37 % 11) * 0.3f;
  const std::vector<uint32_t> all(4, ~0u);
  for (float temperature : {0.0f, 0.8f}) {
    SamplingParams p = P(temperature, 20, 0.9f);
    p.seed = 7;
    p.repetition_penalty = 1.2f;
    SamplerState sa(p), sb(p);
    for (int step = 0; step < 50; ++step) {
      std::vector<float> la = logits, lb = logits;
      auto t = b.SampleMasked(lb, all, &sb);
      ASSERT_TRUE(t.ok());
      EXPECT_EQ(a.Sample(la, &sa), *t);
    }
  }
}

TEST(MaskedSamplerTest, EmptyOrShortMaskIsAnInternalError) {
  Sampler s;
  SamplerState state(P(1.0f));
  std::vector<float> logits(40, 0.0f);
  EXPECT_THAT(
      s.SampleMasked(logits, MaskOf({}, 40), &state),
      StatusIs(absl::StatusCode::kInternal, HasSubstr("allows no token")));
  std::vector<uint32_t> one_word = {~0u};
  EXPECT_THAT(s.SampleMasked(logits, one_word, &state),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("token mask of 1 words for 40 logits")));
}

TEST(MaskedSamplerTest, LogprobsAreOfTheConstrainedDistribution) {
  Sampler s;
  SamplerState state(P(0));
  std::vector<float> logits = {std::log(0.5f), std::log(0.25f),
                               std::log(0.25f)};
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;
  auto t = s.SampleMasked(logits, MaskOf({1, 2}, 3), &state, 3, &chosen, &top);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, 1);
  EXPECT_NEAR(chosen.logprob, std::log(0.5f), 1e-5);
  ASSERT_EQ(top.size(), 2u);  // the masked token is not an alternative
  EXPECT_NE(top[0].token, 0);
  EXPECT_NE(top[1].token, 0);
}

struct StopCase {
  std::vector<std::string> stops;
  std::vector<std::string> pieces;
  std::string emitted;
  bool stopped;
};

TEST(StopMatcherTest, FindsStopsAcrossPiecesAndNeverEmitsThem) {
  const std::vector<StopCase> cases = {
      {{"END"}, {"hello E", "N", "D more"}, "hello ", true},
      {{"END"}, {"hello E", "NX"}, "hello ENX", false},
      {{"\n\n", "User:"}, {"a\n", "\nb"}, "a", true},
      {{"User:"}, {"x Us", "er", ": y"}, "x ", true},
      {{"abc"}, {"ab"}, "ab", false},  // released by Flush
      {{}, {"plain"}, "plain", false},
  };
  for (const StopCase& c : cases) {
    StopMatcher m(c.stops);
    std::string out;
    bool stopped = false;
    for (const std::string& p : c.pieces) {
      out += m.Push(p, &stopped);
      if (stopped) break;
    }
    out += m.Flush();
    EXPECT_EQ(out, c.emitted);
    EXPECT_EQ(stopped, c.stopped);
  }
}

}  // namespace
}  // namespace lumen::engine
