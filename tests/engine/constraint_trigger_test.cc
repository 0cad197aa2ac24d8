// ConstraintTrigger: a lazy constraint's trigger is found whether it comes
// in one token, split across tokens or inside a token with more text, and
// the text handed to the constraint starts at the trigger's first byte. A
// trigger anywhere is found again later; one at the start only there.

#include "engine/constrained/constraint_trigger.h"

#include <string>

#include "gtest/gtest.h"

namespace lumen::engine::constrained {
namespace {

TEST(ConstraintTriggerTest, FindsATriggerInOneToken) {
  ConstraintTrigger t("<tool_call>", /*at_start=*/false);
  EXPECT_FALSE(t.Push("Let me check.").has_value());
  auto from = t.Push("<tool_call>");
  ASSERT_TRUE(from.has_value());
  EXPECT_EQ(*from, "<tool_call>");
}

TEST(ConstraintTriggerTest, FindsATriggerSplitAcrossTokens) {
  ConstraintTrigger t("<tool_call>", /*at_start=*/false);
  EXPECT_FALSE(t.Push("ok <to").has_value());
  EXPECT_FALSE(t.Push("ol_").has_value());
  auto from = t.Push("call>\n{");
  ASSERT_TRUE(from.has_value());
  // The trigger from its first byte, and what followed it in this token.
  EXPECT_EQ(*from, "<tool_call>\n{");
}

TEST(ConstraintTriggerTest, IgnoresNearMissesAndOldText) {
  ConstraintTrigger t("[TOOL_CALLS]", /*at_start=*/false);
  EXPECT_FALSE(t.Push("[TOOL_CALL").has_value());
  EXPECT_FALSE(t.Push("S is not here, [TOOL").has_value());
  EXPECT_FALSE(t.Push("_").has_value());
  EXPECT_FALSE(t.Push("x").has_value());
  // Long tokens between keep only what could still start the trigger.
  EXPECT_FALSE(t.Push(std::string(1000, 'a')).has_value());
  auto from = t.Push("a[TOOL_CALLS][");
  ASSERT_TRUE(from.has_value());
  EXPECT_EQ(*from, "[TOOL_CALLS][");
}

TEST(ConstraintTriggerTest, AOneByteTriggerWorks) {
  ConstraintTrigger t("{", /*at_start=*/false);
  EXPECT_FALSE(t.Push("abc").has_value());
  auto from = t.Push("x{\"a\"");
  ASSERT_TRUE(from.has_value());
  EXPECT_EQ(*from, "{\"a\"");
}

// After an occurrence (which the engine may refuse), the next one is found;
// the old one is not found again.
TEST(ConstraintTriggerTest, FindsTheNextOccurrenceOnly) {
  ConstraintTrigger t("<tool_call>", /*at_start=*/false);
  ASSERT_TRUE(t.Push("<tool_call>oops").has_value());
  EXPECT_FALSE(t.Push(" text").has_value());
  EXPECT_FALSE(t.Push("<tool_").has_value());
  auto from = t.Push("call>");
  ASSERT_TRUE(from.has_value());
  EXPECT_EQ(*from, "<tool_call>");
}

TEST(ConstraintTriggerTest, AtStartMatchesOnlyAfterLeadingWhitespace) {
  {
    ConstraintTrigger t("{\"name\"", /*at_start=*/true);
    EXPECT_FALSE(t.Push(" \n").has_value());
    EXPECT_FALSE(t.Push("{\"na").has_value());
    auto from = t.Push("me\": \"x");
    ASSERT_TRUE(from.has_value());
    EXPECT_EQ(*from, "{\"name\": \"x");
    // Found once: a later occurrence is JSON in the text.
    EXPECT_FALSE(t.Push(" {\"name\"").has_value());
  }
  {
    // Mid-reply JSON never triggers.
    ConstraintTrigger t("{\"name\"", /*at_start=*/true);
    EXPECT_FALSE(t.Push("Here it is: ").has_value());
    EXPECT_FALSE(t.Push("{\"name\": \"Alice\"}").has_value());
  }
  {
    // A start that diverges from the trigger ends the search.
    ConstraintTrigger t("{\"name\"", /*at_start=*/true);
    EXPECT_FALSE(t.Push("{\"city\"").has_value());
    EXPECT_FALSE(t.Push("{\"name\"").has_value());
  }
}

}  // namespace
}  // namespace lumen::engine::constrained
