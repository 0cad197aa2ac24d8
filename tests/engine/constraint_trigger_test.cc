// ConstraintTrigger: a lazy constraint's trigger is found whether it comes
// in one token, split across tokens or inside a token with more text, and
// the text handed to the constraint starts at the trigger's first byte.

#include "engine/constrained/constraint_trigger.h"

#include <string>

#include "gtest/gtest.h"

namespace lumen::engine::constrained {
namespace {

TEST(ConstraintTriggerTest, FindsATriggerInOneToken) {
  ConstraintTrigger t("<tool_call>");
  EXPECT_FALSE(t.Push("Let me check.").has_value());
  auto from = t.Push("<tool_call>");
  ASSERT_TRUE(from.has_value());
  EXPECT_EQ(*from, "<tool_call>");
}

TEST(ConstraintTriggerTest, FindsATriggerSplitAcrossTokens) {
  ConstraintTrigger t("<tool_call>");
  EXPECT_FALSE(t.Push("ok <to").has_value());
  EXPECT_FALSE(t.Push("ol_").has_value());
  auto from = t.Push("call>\n{");
  ASSERT_TRUE(from.has_value());
  // The trigger from its first byte, and what followed it in this token.
  EXPECT_EQ(*from, "<tool_call>\n{");
}

TEST(ConstraintTriggerTest, IgnoresNearMissesAndOldText) {
  ConstraintTrigger t("[TOOL_CALLS]");
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
  ConstraintTrigger t("{");
  EXPECT_FALSE(t.Push("abc").has_value());
  auto from = t.Push("x{\"a\"");
  ASSERT_TRUE(from.has_value());
  EXPECT_EQ(*from, "{\"a\"");
}

}  // namespace
}  // namespace lumen::engine::constrained
