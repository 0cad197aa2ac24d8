#include "engine/scheduler/prefill_budget.h"

#include <gtest/gtest.h>

#include <limits>

namespace lumen::engine {
namespace {

PrefillBudgetOptions Options(double max_stall, int32_t min_tokens = 1,
                             int32_t max_tokens = 2048) {
  return {.max_stall = max_stall,
          .min_tokens = min_tokens,
          .max_tokens = max_tokens};
}

TEST(PrefillBudgetTest, BoundsNothingUntilBothCostsAreMeasured) {
  PrefillBudget budget(Options(1.0));
  EXPECT_EQ(budget.Tokens(16), 2048);
  budget.Observe(/*decoding=*/16, /*prompt_tokens=*/0, 0.020);
  EXPECT_EQ(budget.Tokens(16), 2048);  // decode cost only
  EXPECT_DOUBLE_EQ(budget.DecodeStepSeconds(16), 0.020);
  EXPECT_EQ(budget.seconds_per_prompt_token(), 0);
}

TEST(PrefillBudgetTest, AFirstPromptOnlyStepIsAnUpperBoundOfTheTokenCost) {
  PrefillBudget budget(Options(1.0));
  budget.Observe(0, 1000, 1.0);  // at most 1 ms per prompt token
  EXPECT_DOUBLE_EQ(budget.seconds_per_prompt_token(), 0.001);
  EXPECT_EQ(budget.Tokens(16), 2048);  // no decode step measured yet
  budget.Observe(16, 0, 0.200);        // a 200 ms decode step
  // A stall of 1x the decode step = 200 ms = 200 prompt tokens.
  EXPECT_EQ(budget.Tokens(16), 200);
}

TEST(PrefillBudgetTest, MixedStepsCountOnlyWhatThePromptAdded) {
  PrefillBudget budget(Options(0.5));
  budget.Observe(16, 0, 0.100);
  budget.Observe(0, 100, 0.200);  // first guess: 2 ms per token
  // 100 ms of decode + 400 prompt tokens at 0.5 ms = 300 ms.
  for (int i = 0; i < 60; ++i) budget.Observe(16, 400, 0.300);
  EXPECT_NEAR(budget.seconds_per_prompt_token(), 0.0005, 1e-8);
  EXPECT_EQ(budget.Tokens(16), 99);  // 0.5 * 100 ms / 0.5 ms, from above
}

// Decode-only steps of different batch sizes fit a line: a mixed step is
// charged only beyond the prediction for its own stream count, and the
// bound follows the streams of the next step.
TEST(PrefillBudgetTest, DecodeCostFollowsTheNumberOfStreams) {
  PrefillBudget budget(Options(1.0));
  // 20 ms + 1 ms per stream.
  for (int n : {1, 16, 4, 8, 1, 16, 2, 12})
    budget.Observe(n, 0, 0.020 + 0.001 * n);
  EXPECT_NEAR(budget.DecodeStepSeconds(1), 0.021, 1e-9);
  EXPECT_NEAR(budget.DecodeStepSeconds(16), 0.036, 1e-9);
  EXPECT_NEAR(budget.DecodeStepSeconds(0), 0.020, 1e-9);
  // A mixed step of 16 streams + 100 prompt tokens at 0.2 ms: 56 ms.
  budget.Observe(16, 100, 0.056);
  EXPECT_NEAR(budget.seconds_per_prompt_token(), 0.0002, 1e-9);
  EXPECT_NEAR(budget.Tokens(16), 180, 1);  // 36 ms / 0.2 ms
  EXPECT_NEAR(budget.Tokens(1), 105, 1);   // 21 ms / 0.2 ms
  // A prompt-only step is charged beyond the fixed 20 ms only.
  PrefillBudget fresh(Options(1.0));
  for (int n : {1, 16, 4, 8}) fresh.Observe(n, 0, 0.020 + 0.001 * n);
  fresh.Observe(0, 100, 0.040);
  EXPECT_NEAR(fresh.seconds_per_prompt_token(), 0.0002, 1e-9);
}

// With one stream count only, there is no slope: the mean step time is the
// prediction for any count.
TEST(PrefillBudgetTest, OneStreamCountGivesTheMeanForEveryCount) {
  PrefillBudget budget(Options(1.0));
  budget.Observe(8, 0, 0.040);
  budget.Observe(8, 0, 0.060);
  EXPECT_GT(budget.DecodeStepSeconds(8), 0.040);
  EXPECT_LT(budget.DecodeStepSeconds(8), 0.060);
  EXPECT_DOUBLE_EQ(budget.DecodeStepSeconds(1), budget.DecodeStepSeconds(32));
}

TEST(PrefillBudgetTest, ClampsToItsRange) {
  PrefillBudget budget(Options(1.0, 64, 512));
  budget.Observe(0, 100, 1.0);      // 10 ms per prompt token: slow
  budget.Observe(4, 0, 0.010);      // fits one token
  EXPECT_EQ(budget.Tokens(4), 64);  // but prompts keep moving
  PrefillBudget fast(Options(1.0, 64, 512));
  fast.Observe(0, 1000, 0.001);  // 1 us per token
  fast.Observe(4, 0, 0.010);
  EXPECT_EQ(fast.Tokens(4), 512);
  // A minimum above the maximum is the maximum.
  PrefillBudget narrow(Options(1.0, 64, 32));
  narrow.Observe(0, 100, 1.0);
  narrow.Observe(4, 0, 0.010);
  EXPECT_EQ(narrow.Tokens(4), 32);
}

TEST(PrefillBudgetTest, ANegativeMixedSampleCannotUnboundTheNextStep) {
  PrefillBudget budget(Options(1.0));
  budget.Observe(0, 100, 0.100);  // 1 ms per token
  budget.Observe(16, 0, 0.050);
  EXPECT_EQ(budget.Tokens(16), 50);
  // A mixed step faster than the decode-only prediction (noise): the cost
  // per token falls at most to the floor's blend, never to zero.
  budget.Observe(16, 100, 0.040);
  EXPECT_GT(budget.seconds_per_prompt_token(), 0.0005);
  EXPECT_LT(budget.Tokens(16), 100);
}

TEST(PrefillBudgetTest, IgnoresSmallPromptSamplesAndBadTimes) {
  PrefillBudget budget(Options(1.0));
  budget.Observe(0, 8, 1.0);  // too few prompt tokens to price one
  EXPECT_EQ(budget.seconds_per_prompt_token(), 0);
  budget.Observe(16, 0, 0.0);
  budget.Observe(16, 0, -1.0);
  budget.Observe(16, 0, std::numeric_limits<double>::quiet_NaN());
  budget.Observe(16, 0, std::numeric_limits<double>::infinity());
  EXPECT_EQ(budget.DecodeStepSeconds(16), 0);
  EXPECT_EQ(budget.Tokens(16), 2048);
}

TEST(PrefillBudgetTest, ZeroOrNaNStallBoundsNothing) {
  for (double stall : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN()}) {
    PrefillBudget budget(Options(stall, 64, 300));
    budget.Observe(0, 100, 1.0);
    budget.Observe(16, 0, 0.001);
    EXPECT_EQ(budget.Tokens(16), 300);  // only the fixed bound
  }
  PrefillBudget huge(Options(std::numeric_limits<double>::infinity(), 64, 300));
  huge.Observe(0, 100, 1.0);
  huge.Observe(16, 0, 0.001);
  EXPECT_EQ(huge.Tokens(16), 300);
}

}  // namespace
}  // namespace lumen::engine
