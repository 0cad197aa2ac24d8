// Validation of tools, tool_choice and tool messages: each bad input is
// InvalidArgument naming the field; good inputs pass.

#include "chat/tool_validation.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::chat {
namespace {

using ::testing::HasSubstr;

const char kGoodTools[] = R"([
  {"type": "function", "function": {"name": "get_weather",
   "description": "Current weather",
   "parameters": {"type": "object", "properties": {
     "city": {"type": "string", "description": "City"},
     "unit": {"type": "string", "enum": ["c", "f"]},
     "days": {"type": ["integer", "null"], "minimum": 1},
     "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
     "where": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/point"}]}},
    "required": ["city"], "additionalProperties": false,
    "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}}}}},
  {"type": "function", "function": {"name": "ping-2"}}])";

TEST(ValidateTools, AcceptsWellFormedTools) {
  EXPECT_TRUE(ValidateTools(Json::parse(kGoodTools)).ok());
  EXPECT_TRUE(ValidateTools(Json()).ok());
  EXPECT_TRUE(ValidateTools(Json::array()).ok());
}

struct BadCase {
  const char* json;
  const char* message;
};

const BadCase kBadTools[] = {
    {R"({"type": "function"})", "tools must be a list"},
    {R"([{"type": "retrieval"}])", "tools[0].type must be \"function\""},
    {R"([{"type": "function"}])", "tools[0].function must be an object"},
    {R"([{"type": "function", "function": {"name": "has space"}}])",
     "tools[0].function.name must be 1 to 64 letters"},
    {R"([{"type": "function", "function": {"name": ""}}])",
     "tools[0].function.name must be 1 to 64"},
    {R"([{"type": "function", "function": {"name": "a"}},
         {"type": "function", "function": {"name": "b"}},
         {"type": "function", "function": {"name": "a"}}])",
     "tools[2].function.name 'a' duplicates tools[0]"},
    {R"([{"type": "function", "function": {"name": "a", "description": 3}}])",
     "tools[0].function.description must be a string"},
    {R"([{"type": "function", "function": {"name": "a", "parameters": "x"}}])",
     "tools[0].function.parameters must be a JSON Schema object"},
    {R"([{"type": "function", "function": {"name": "a",
         "parameters": {"type": "array"}}}])",
     "tools[0].function.parameters.type must be \"object\""},
    {R"([{"type": "function", "function": {"name": "a", "parameters":
         {"type": "object", "properties": {"x": {"type": "str"}}}}}])",
     "tools[0].function.parameters.properties.x.type must be object, array"},
    {R"([{"type": "function", "function": {"name": "a", "parameters":
         {"type": "object", "properties": {"x": 5}}}}])",
     "parameters.properties.x must be a JSON Schema object"},
    {R"([{"type": "function", "function": {"name": "a", "parameters":
         {"type": "object", "properties": {"x": {}}, "required": ["y"]}}}])",
     "parameters.required[0] names 'y', which is not in properties"},
    {R"([{"type": "function", "function": {"name": "a", "parameters":
         {"type": "object", "required": "x"}}}])",
     "parameters.required must be a list"},
    {R"([{"type": "function", "function": {"name": "a", "parameters":
         {"type": "object", "properties": {"x": {"enum": []}}}}}])",
     "parameters.properties.x.enum must be a non-empty list"},
    {R"([{"type": "function", "function": {"name": "a", "parameters":
         {"type": "object", "properties": {"x": {"type": "array", "items": 1}}}}}])",
     "parameters.properties.x.items must be a JSON Schema object"},
    {R"([{"type": "function", "function": {"name": "a", "parameters":
         {"type": "object", "properties": {"x": {"anyOf": []}}}}}])",
     "parameters.properties.x.anyOf must be a non-empty list"},
    {R"([{"type": "function", "function": {"name": "a", "parameters":
         {"type": "object", "properties": {"x": {"maxLength": -1}}}}}])",
     "parameters.properties.x.maxLength must be a non-negative integer"},
};

class BadToolsTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadToolsTest, NamesTheField) {
  EXPECT_THAT(ValidateTools(Json::parse(GetParam().json)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(Tools, BadToolsTest, ::testing::ValuesIn(kBadTools));

TEST(ValidateTools, DeepSchemasAreRefused) {
  std::string schema = R"({"type": "object"})";
  for (int i = 0; i < 40; ++i)
    schema = R"({"type": "object", "properties": {"x": )" + schema + "}}";
  const Json tools = Json::parse(
      R"([{"type": "function", "function": {"name": "a", "parameters": )" +
      schema + "}}]");
  EXPECT_THAT(ValidateTools(tools),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("nested deeper than 32")));
}

TEST(ParseToolChoice, Modes) {
  const Json tools = Json::parse(kGoodTools);
  using Mode = ToolChoice::Mode;
  EXPECT_EQ(ParseToolChoice(Json(), tools)->mode, Mode::kAuto);
  EXPECT_EQ(ParseToolChoice(Json(), Json())->mode, Mode::kNone);
  EXPECT_EQ(ParseToolChoice("auto", tools)->mode, Mode::kAuto);
  EXPECT_EQ(ParseToolChoice("auto", Json::array())->mode, Mode::kNone);
  EXPECT_EQ(ParseToolChoice("none", tools)->mode, Mode::kNone);
  EXPECT_EQ(ParseToolChoice("required", tools)->mode, Mode::kRequired);
  auto named = ParseToolChoice(
      Json::parse(R"({"type": "function", "function": {"name": "ping-2"}})"),
      tools);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->mode, Mode::kFunction);
  EXPECT_EQ(named->function, "ping-2");
}

const BadCase kBadChoices[] = {
    {R"("sometimes")", "tool_choice 'sometimes' is not auto, none, required"},
    {"3", "tool_choice must be a string or an object"},
    {R"({"type": "tool", "function": {"name": "a"}})",
     "tool_choice.type must be \"function\""},
    {R"({"type": "function", "function": {}})",
     "tool_choice.function.name must be a string"},
    {R"({"type": "function", "function": {"name": "send_email"}})",
     "tool_choice.function.name 'send_email' is not one of the tools"},
};

class BadChoiceTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadChoiceTest, NamesTheField) {
  EXPECT_THAT(
      ParseToolChoice(Json::parse(GetParam().json), Json::parse(kGoodTools)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(Choices, BadChoiceTest,
                         ::testing::ValuesIn(kBadChoices));

TEST(ParseToolChoice, RequiredNeedsTools) {
  EXPECT_THAT(ParseToolChoice("required", Json()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'required' but no tools")));
}

TEST(ValidateToolMessages, ToolMessagesAnswerEarlierCalls) {
  const Json good = Json::parse(R"([
    {"role": "user", "content": "q"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
      {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "call_2", "content": "r2"},
    {"role": "tool", "tool_call_id": "call_1", "content": "r1"}])");
  EXPECT_TRUE(ValidateToolMessages(good).ok());

  Json unknown = good;
  unknown[3]["tool_call_id"] = "call_9";
  EXPECT_THAT(ValidateToolMessages(unknown),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("messages[3].tool_call_id 'call_9' matches no "
                                 "tool call of an earlier assistant message")));
  Json missing = good;
  missing[2].erase("tool_call_id");
  EXPECT_THAT(ValidateToolMessages(missing),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("messages[2].tool_call_id is required")));
  // The answer must come after the call.
  const Json early = Json::parse(R"([
    {"role": "tool", "tool_call_id": "call_1", "content": "r"},
    {"role": "assistant", "tool_calls": [{"id": "call_1", "function": {"name": "a"}}]}])");
  EXPECT_THAT(
      ValidateToolMessages(early),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("messages[0].tool_call_id 'call_1' matches no")));
  Json no_id = good;
  no_id[1]["tool_calls"][0].erase("id");
  EXPECT_THAT(ValidateToolMessages(no_id),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("messages[1].tool_calls[0].id must be")));
  // Malformed roles are NormalizeMessages' to report, not a crash here.
  EXPECT_TRUE(ValidateToolMessages(Json::parse(R"([{"role": 5}, 7])")).ok());
}

}  // namespace
}  // namespace lumen::chat
