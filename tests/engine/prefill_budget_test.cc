#include "engine/scheduler/prefill_budget.h"

#include <gtest/gtest.h>

#include <limits>

namespace lumen::engine {
namespace {

PrefillBudgetOptions Options(double max_stall, int32_t min_tokens = 64,
                             int32_t max_tokens = 2048) {
  return {.max_stall = max_stall,
          .min_tokens = min_tokens,
          .max_tokens = max_tokens};
}

TEST(PrefillBudgetTest, BoundsNothingUntilBothCostsAreMeasured) {
  PrefillBudget budget(Options(1.0));
  EXPECT_EQ(budget.tokens(), 2048);
  budget.Observe(/*decode_tokens=*/16, /*prompt_tokens=*/0, 0.020);
  EXPECT_EQ(budget.tokens(), 2048);  // decode cost only
  EXPECT_DOUBLE_EQ(budget.decode_step_seconds(), 0.020);
  EXPECT_EQ(budget.seconds_per_prompt_token(), 0);
}

TEST(PrefillBudgetTest, PromptOnlyStepsGiveTheCostPerToken) {
  PrefillBudget budget(Options(1.0));
  budget.Observe(0, 1000, 1.0);  // 1 ms per prompt token
  EXPECT_EQ(budget.tokens(), 2048);
  budget.Observe(16, 0, 0.200);  // a 200 ms decode step
  // A stall of 1x the decode step = 200 ms = 200 prompt tokens.
  EXPECT_EQ(budget.tokens(), 200);
}

TEST(PrefillBudgetTest, MixedStepsCountOnlyWhatThePromptAdded) {
  PrefillBudget budget(Options(0.5));
  budget.Observe(16, 0, 0.100);
  // 100 ms of decode + 400 prompt tokens at 0.5 ms = 300 ms.
  budget.Observe(16, 400, 0.300);
  EXPECT_DOUBLE_EQ(budget.seconds_per_prompt_token(), 0.0005);
  EXPECT_EQ(budget.tokens(), 100);  // 0.5 * 100 ms / 0.5 ms
}

TEST(PrefillBudgetTest, FollowsAChangeInCostOverSteps) {
  PrefillBudget budget(Options(1.0, 1));
  budget.Observe(0, 100, 0.100);  // 1 ms per token
  budget.Observe(8, 0, 0.050);
  EXPECT_EQ(budget.tokens(), 50);
  // The decode step doubles (more sequences, longer contexts).
  for (int i = 0; i < 40; ++i) budget.Observe(32, 0, 0.100);
  EXPECT_NEAR(budget.decode_step_seconds(), 0.100, 1e-4);
  EXPECT_EQ(budget.tokens(), 99);  // converges from below: 99.99...
}

TEST(PrefillBudgetTest, ClampsToItsRange) {
  PrefillBudget budget(Options(1.0, 64, 512));
  budget.Observe(0, 100, 1.0);     // 10 ms per prompt token: slow
  budget.Observe(4, 0, 0.010);     // fits one token
  EXPECT_EQ(budget.tokens(), 64);  // but prompts keep moving
  PrefillBudget fast(Options(1.0, 64, 512));
  fast.Observe(0, 1000, 0.001);  // 1 us per token
  fast.Observe(4, 0, 0.010);
  EXPECT_EQ(fast.tokens(), 512);
  // A minimum above the maximum is the maximum.
  PrefillBudget narrow(Options(1.0, 64, 32));
  narrow.Observe(0, 100, 1.0);
  narrow.Observe(4, 0, 0.010);
  EXPECT_EQ(narrow.tokens(), 32);
}

TEST(PrefillBudgetTest, ANegativeMixedSampleCannotUnboundTheNextStep) {
  PrefillBudget budget(Options(1.0, 1));
  budget.Observe(0, 100, 0.100);  // 1 ms per token
  budget.Observe(16, 0, 0.050);
  EXPECT_EQ(budget.tokens(), 50);
  // A mixed step faster than the decode-only estimate (noise): the cost per
  // token falls at most to the floor's blend, never to zero.
  budget.Observe(16, 100, 0.040);
  EXPECT_GT(budget.seconds_per_prompt_token(), 0.0005);
  EXPECT_LT(budget.tokens(), 100);
}

TEST(PrefillBudgetTest, IgnoresSmallPromptSamplesAndBadTimes) {
  PrefillBudget budget(Options(1.0));
  budget.Observe(0, 8, 1.0);  // too few prompt tokens to price one
  EXPECT_EQ(budget.seconds_per_prompt_token(), 0);
  budget.Observe(16, 0, 0.0);
  budget.Observe(16, 0, -1.0);
  budget.Observe(16, 0, std::numeric_limits<double>::quiet_NaN());
  budget.Observe(16, 0, std::numeric_limits<double>::infinity());
  EXPECT_EQ(budget.decode_step_seconds(), 0);
  EXPECT_EQ(budget.tokens(), 2048);
}

TEST(PrefillBudgetTest, ZeroStallBoundsNothing) {
  PrefillBudget budget(Options(0.0, 64, 300));
  budget.Observe(0, 100, 1.0);
  budget.Observe(16, 0, 0.001);
  EXPECT_EQ(budget.tokens(), 300);  // only the fixed bound
}

}  // namespace
}  // namespace lumen::engine
