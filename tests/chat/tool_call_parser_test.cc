// Tool-call parsing per family on hand-made outputs: plain text, one call,
// several calls, a call after text, malformed calls (which stay content
// until the call is certain) and calls cut by the end of output (which stay
// calls, unfinished). Every case is also streamed in every two-piece split
// and one character at a time: the concatenated deltas equal the one-shot
// parse, so no call markup ever reaches the content deltas, and each call's
// later pieces only append to its arguments.

#include "chat/tool_call_parser.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chat/jinja/value.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::chat {
namespace {

using Json = jinja::Json;

struct WantCall {
  std::string name;
  std::string arguments;  // compact JSON
  std::string id = "";
};

struct ParseCase {
  std::string label;
  ToolCallFormat format;
  std::string output;
  std::string content;
  std::vector<WantCall> calls;
  bool unfinished = false;  // a call's arguments never closed
};

std::vector<ParseCase> Cases() {
  using F = ToolCallFormat;
  const std::string weather =
      R"({"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}})";
  const std::string weather_args = R"({"city":"Paris","unit":"celsius"})";
  return {
      // Hermes / Qwen
      {"hermes_text",
       F::kHermes,
       "The sky is <b>blue</b>.",
       "The sky is <b>blue</b>.",
       {}},
      {"hermes_call",
       F::kHermes,
       "<tool_call>\n" + weather + "\n</tool_call>",
       "",
       {{"get_weather", weather_args}}},
      {"hermes_call_after_text",
       F::kHermes,
       "Let me check.\n<tool_call>\n" + weather + "\n</tool_call>",
       "Let me check.\n",
       {{"get_weather", weather_args}}},
      {"hermes_two_calls",
       F::kHermes,
       "<tool_call>\n" + weather + "\n</tool_call>\n<tool_call>\n" +
           R"({"name": "search_docs", "arguments": {"query": "rain", "top_k": 3}})" +
           "\n</tool_call>",
       "",
       {{"get_weather", weather_args},
        {"search_docs", R"({"query":"rain","top_k":3})"}}},
      {"hermes_text_after_call",
       F::kHermes,
       "<tool_call>" + weather + "</tool_call>\n\nDone.",
       "Done.",
       {{"get_weather", weather_args}}},
      {"hermes_arguments_as_string",
       F::kHermes,
       R"(<tool_call>{"name": "f", "arguments": "{\"a\": [1, 2]}"}</tool_call>)",
       "",
       {{"f", R"({"a":[1,2]})"}}},
      {"hermes_no_arguments",
       F::kHermes,
       R"(<tool_call>{"name": "ping"}</tool_call>)",
       "",
       {{"ping", "{}"}}},
      {"hermes_malformed_json",
       F::kHermes,
       R"(Hm <tool_call>{"name": "f", "arguments": }</tool_call> ok)",
       R"(Hm <tool_call>{"name": "f", "arguments": }</tool_call> ok)",
       {}},
      {"hermes_no_name",
       F::kHermes,
       R"(<tool_call>{"arguments": {}}</tool_call>)",
       R"(<tool_call>{"arguments": {}}</tool_call>)",
       {}},
      {"hermes_arguments_not_object",
       F::kHermes,
       R"(<tool_call>{"name": "f", "arguments": [1]}</tool_call>)",
       R"(<tool_call>{"name": "f", "arguments": [1]}</tool_call>)",
       {}},
      {"hermes_partial_json",
       F::kHermes,
       R"(<tool_call>{"name": "get_weather", "argu)",
       R"(<tool_call>{"name": "get_weather", "argu)",
       {}},
      {"hermes_unclosed_but_complete",
       F::kHermes,
       "<tool_call>\n" + weather + "\n",
       "",
       {{"get_weather", weather_args}}},
      {"hermes_lookalike_tag",
       F::kHermes,
       "Use <tool> or <tool_c and more",
       "Use <tool> or <tool_c and more",
       {}},
      // The call was certain at its arguments' '{': JSON nested too deep
      // breaks it there (64 levels counted from the call object), and it
      // stays a call.
      {"hermes_deep_nesting",
       F::kHermes,
       R"(<tool_call>{"name": "f", "arguments": {"a": )" +
           std::string(200, '[') + std::string(200, ']') + "}}</tool_call>",
       "",
       {{"f", R"({"a":)" + std::string(62, '[')}},
       true},
      // The depth is counted from the outermost JSON, so the arguments
      // break before the object around them: nothing sent is sent again.
      {"llama3_deep_nesting_breaks_in_the_arguments",
       F::kLlama3,
       R"({"name": "f", "parameters": {"a": )" + std::string(63, '[') +
           std::string(63, ']') + "}}",
       "[" + std::string(63, ']') + "}}",
       {{"f", R"({"a":)" + std::string(62, '[')}},
       true},
      {"generic_deep_list_breaks_in_the_arguments",
       F::kGeneric,
       R"({"tool_calls": [{"name": "f", "arguments": {"a": )" +
           std::string(61, '[') + std::string(61, ']') + "}}]}",
       "[" + std::string(61, ']') + "}}]}",
       {{"f", R"({"a":)" + std::string(60, '[')}},
       true},
      // Balanced brackets around invalid JSON: a call, not finished.
      {"hermes_invalid_json_arguments",
       F::kHermes,
       R"(<tool_call>{"name": "f", "arguments": {"a": hello, "b": 1 2}}</tool_call>)",
       "",
       {{"f", R"({"a":hello,"b":12})"}},
       true},
      // Output that ends inside <tool_call> after a finished call: the text
      // after the call is content.
      {"hermes_unclosed_then_text",
       F::kHermes,
       "<tool_call>\n" + weather + "\nDone, see above.",
       "Done, see above.",
       {{"get_weather", weather_args}}},
      {"hermes_json_answer_in_tags_is_content",
       F::kHermes,
       R"(<tool_call>{"answer": {"a": 1}}</tool_call>)",
       R"(<tool_call>{"answer": {"a": 1}}</tool_call>)",
       {}},
      {"hermes_arguments_before_name",
       F::kHermes,
       R"(<tool_call>{"arguments": {"x": 1}, "name": "f"}</tool_call>)",
       "",
       {{"f", R"({"x":1})"}}},
      {"hermes_list_in_one_tag",
       F::kHermes,
       R"(<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"y": "</tool"}}]</tool_call>)",
       "",
       {{"a", "{}"}, {"b", R"({"y":"</tool"})"}}},
      {"hermes_cut_inside_arguments",
       F::kHermes,
       R"(Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Par)",
       "Sure. ",
       {{"get_weather", R"({"city":"Par)"}},
       true},
      // Qwen3-Coder XML inside <tool_call>
      {"qwen3_coder_call",
       F::kQwen3CoderXml,
       "I'll "
       "look.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
       "</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</"
       "tool_call>",
       "I'll look.\n",
       {{"get_weather", R"({"city":"Paris","days":3})"}}},
      {"qwen3_coder_no_parameters",
       F::kQwen3CoderXml,
       "<tool_call>\n<function=ping>\n</function>\n</tool_call>",
       "",
       {{"ping", "{}"}}},
      {"qwen3_coder_json_value_and_text",
       F::kQwen3CoderXml,
       "<tool_call>\n<function=f>\n<parameter=q>\n{\"a\": [1, "
       "2]}\n</parameter>\n<parameter=s>\nx < y\n</parameter>\n</"
       "function>\n</tool_call>",
       "",
       {{"f", R"({"q":{"a":[1,2]},"s":"x < y"})"}}},
      // Certain at <function=f>: the parameter that never closes leaves the
      // call unfinished, and the region still ends at </tool_call>.
      {"qwen3_coder_malformed",
       F::kQwen3CoderXml,
       "<tool_call>\n<function=f>\n<parameter=x>\n1\n</function>\n</"
       "tool_call>after",
       "after",
       {{"f", ""}},
       true},
      {"qwen3_coder_not_a_function",
       F::kQwen3CoderXml,
       "<tool_call>\n<fun>\n</tool_call>",
       "<tool_call>\n<fun>\n</tool_call>",
       {}},
      // Llama 3.1+
      {"llama3_bare_json",
       F::kLlama3,
       R"({"name": "get_weather", "parameters": {"city": "Paris"}})",
       "",
       {{"get_weather", R"({"city":"Paris"})"}}},
      {"llama3_leading_space_and_type",
       F::kLlama3,
       R"(  {"type": "function", "name": "f", "parameters": {}})",
       "",
       {{"f", "{}"}}},
      {"llama3_python_tag",
       F::kLlama3,
       R"(<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}})",
       "",
       {{"get_weather", R"({"city":"Paris"})"}}},
      {"llama3_two_bare_calls",
       F::kLlama3,
       R"({"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 1}})",
       "",
       {{"a", "{}"}, {"b", R"({"x":1})"}}},
      {"llama3_json_answer_is_content",
       F::kLlama3,
       R"({"answer": 42})",
       R"({"answer": 42})",
       {}},
      {"llama3_json_mid_text_is_content",
       F::kLlama3,
       R"(Call it like {"name": "f", "parameters": {}}.)",
       R"(Call it like {"name": "f", "parameters": {}}.)",
       {}},
      {"llama3_partial",
       F::kLlama3,
       R"({"name": "get_weather", "parameters": {"ci)",
       "",
       {{"get_weather", R"({"ci)"}},
       true},
      {"llama3_partial_before_arguments",
       F::kLlama3,
       R"({"name": "get_weather", "param)",
       R"({"name": "get_weather", "param)",
       {}},
      {"llama3_broken_after_call",
       F::kLlama3,
       R"({"name": "f", "parameters": {"x": 1}] and then)",
       "] and then",
       {{"f", R"({"x":1})"}}},
      // Mistral
      // An id written after the arguments comes too late for the call's
      // first piece: the server gives the call its own.
      {"mistral_array",
       F::kMistral,
       R"([TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcDEF123"}])",
       "",
       {{"get_weather", R"({"city":"Paris"})"}}},
      {"mistral_id_first",
       F::kMistral,
       R"([TOOL_CALLS][{"id": "abcDEF123", "name": "f", "arguments": {"n": 1.50}}])",
       "",
       {{"f", R"({"n":1.50})", "abcDEF123"}}},
      {"mistral_skips_what_is_not_a_call",
       F::kMistral,
       R"([TOOL_CALLS][{"name": "a", "arguments": {}}, {"name": 5}, {"name": "b", "arguments": {}}] ok)",
       "ok",
       {{"a", "{}"}, {"b", "{}"}}},
      {"mistral_two_in_array",
       F::kMistral,
       R"(Sure.[TOOL_CALLS][{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"q": "x"}}])",
       "Sure.",
       {{"a", "{}"}, {"b", R"({"q":"x"})"}}},
      {"mistral_v11",
       F::kMistral,
       R"([TOOL_CALLS]get_weather[CALL_ID]abcDEF123[ARGS]{"city": "Paris"})",
       "",
       {{"get_weather", R"({"city":"Paris"})", "abcDEF123"}}},
      {"mistral_v11_two",
       F::kMistral,
       R"([TOOL_CALLS]a[ARGS]{}[TOOL_CALLS]b[ARGS]{"x": [1, {"y": "]"}]})",
       "",
       {{"a", "{}"}, {"b", R"({"x":[1,{"y":"]"}]})"}}},
      // Found by tool_call_fuzzer: a malformed call ends where it breaks,
      // whatever text has arrived, so a call after it is still found.
      {"mistral_v11_malformed_then_call",
       F::kMistral,
       R"([TOOL_CALLS]a[ARGS]x y [TOOL_CALLS]b[ARGS]{})",
       "[TOOL_CALLS]a[ARGS]x y ",
       {{"b", "{}"}}},
      {"mistral_malformed",
       F::kMistral,
       R"([TOOL_CALLS][{"name": 5}])",
       R"([TOOL_CALLS][{"name": 5}])",
       {}},
      {"mistral_partial",
       F::kMistral,
       R"([TOOL_CALLS][{"name": "a", "arg)",
       R"([TOOL_CALLS][{"name": "a", "arg)",
       {}},
      // Granite
      {"granite_call",
       F::kGranite,
       R"(<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}])",
       "",
       {{"get_weather", R"({"city":"Paris"})"}}},
      {"granite_text", F::kGranite, "Paris is sunny.", "Paris is sunny.", {}},
      // Generic JSON fallback
      {"generic_tool_calls",
       F::kGeneric,
       R"({"tool_calls": [{"name": "a", "arguments": {"k": true}}, {"name": "b"}]})",
       "",
       {{"a", R"({"k":true})"}, {"b", "{}"}}},
      {"generic_tool_call",
       F::kGeneric,
       R"({"tool_call": {"name": "a", "arguments": {}}})",
       "",
       {{"a", "{}"}}},
      {"generic_openai_shape",
       F::kGeneric,
       R"({"id": "call_9", "type": "function", "function": {"name": "a", "arguments": "{}"}})",
       "",
       {{"a", "{}", "call_9"}}},
      {"generic_response_is_content",
       F::kGeneric,
       R"({"response": "hi"})",
       R"({"response": "hi"})",
       {}},
      {"generic_text", F::kGeneric, "Hello {there}", "Hello {there}", {}},
      {"generic_unbalanced", F::kGeneric, "{]", "{]", {}},
      {"generic_openai_shape_streams",
       F::kGeneric,
       R"({"id": "call_1", "type": "function", "function": {"name": "a", "arguments": {"k": [1, 2]}}})",
       "",
       {{"a", R"({"k":[1,2]})", "call_1"}}},
      {"generic_tool_calls_then_more",
       F::kGeneric,
       R"({"tool_calls": [{"name": "a", "arguments": {}}], "note": "x"})",
       "",
       {{"a", "{}"}}},
  };
}

// The merged result of one parse, and whether its pieces kept the rules: a
// call's first piece has a name; later ones only append arguments.
struct Parsed {
  ParsedOutput merged;
  bool unfinished = false;
  std::string piece_errors;
};

void Append(Parsed* total, ParsedOutput part) {
  total->merged.content += part.content;
  for (ToolCall& c : part.tool_calls) {
    const bool first =
        c.index == static_cast<int>(total->merged.tool_calls.size());
    if (first && c.name.empty()) total->piece_errors += "first without name;";
    if (!first && (!c.name.empty() || !c.id.empty() ||
                   c.index > static_cast<int>(total->merged.tool_calls.size())))
      total->piece_errors += "later piece with a name, id or new index;";
    if (!first && c.arguments.empty()) total->piece_errors += "empty piece;";
    MergeToolCall(&total->merged.tool_calls, std::move(c));
  }
}

void ExpectMatches(const Parsed& parsed, const ParseCase& c,
                   const std::string& how) {
  const ParsedOutput& got = parsed.merged;
  EXPECT_EQ(parsed.piece_errors, "") << c.label << " " << how;
  EXPECT_EQ(parsed.unfinished, c.unfinished) << c.label << " " << how;
  EXPECT_EQ(got.content, c.content) << c.label << " " << how;
  ASSERT_EQ(got.tool_calls.size(), c.calls.size()) << c.label << " " << how;
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(got.tool_calls[i].index, static_cast<int>(i)) << c.label;
    EXPECT_EQ(got.tool_calls[i].name, c.calls[i].name) << c.label << " " << how;
    EXPECT_EQ(got.tool_calls[i].arguments, c.calls[i].arguments)
        << c.label << " " << how;
    EXPECT_EQ(got.tool_calls[i].id, c.calls[i].id) << c.label << " " << how;
  }
}

class ParseTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParseTest, OneShot) {
  ToolCallStreamParser parser(GetParam().format);
  Parsed total;
  Append(&total, parser.Push(GetParam().output));
  Append(&total, parser.Finish());
  total.unfinished = parser.unfinished();
  ExpectMatches(total, GetParam(), "one shot");
  const ParsedOutput direct =
      ParseToolCalls(GetParam().format, GetParam().output);
  EXPECT_EQ(direct.content, total.merged.content);
  EXPECT_EQ(direct.tool_calls.size(), total.merged.tool_calls.size());
}

TEST_P(ParseTest, StreamedInEveryTwoPieceSplit) {
  const ParseCase& c = GetParam();
  for (size_t cut = 0; cut <= c.output.size(); ++cut) {
    ToolCallStreamParser parser(c.format);
    Parsed total;
    Append(&total, parser.Push(absl::string_view(c.output).substr(0, cut)));
    Append(&total, parser.Push(absl::string_view(c.output).substr(cut)));
    Append(&total, parser.Finish());
    total.unfinished = parser.unfinished();
    ExpectMatches(total, c, absl::StrCat("split at ", cut));
    if (HasFailure()) return;
  }
}

TEST_P(ParseTest, StreamedOneByteAtATime) {
  const ParseCase& c = GetParam();
  ToolCallStreamParser parser(c.format);
  Parsed total;
  for (char ch : c.output)
    Append(&total, parser.Push(absl::string_view(&ch, 1)));
  Append(&total, parser.Finish());
  total.unfinished = parser.unfinished();
  ExpectMatches(total, c, "byte by byte");
}

INSTANTIATE_TEST_SUITE_P(Families, ParseTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<ParseCase>& info) {
                           return info.param.label;
                         });

TEST(ToolCallStream, HoldsBackWhatMayBecomeMarkup) {
  ToolCallStreamParser parser(ToolCallFormat::kHermes);
  ParsedOutput out = parser.Push("Checking <tool");
  EXPECT_EQ(out.content, "Checking ");  // "<tool" waits
  out = parser.Push("_call>\n{\"name\": \"f\", ");
  EXPECT_TRUE(out.empty());  // inside a call: nothing yet
  out = parser.Push("\"arguments\": {}}\n</tool_call> now");
  EXPECT_EQ(out.content, "now");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "f");
  EXPECT_TRUE(parser.Finish().empty());

  // A prefix that turns out to be text is released as soon as it is known.
  ToolCallStreamParser text(ToolCallFormat::kHermes);
  EXPECT_EQ(text.Push("a <to").content, "a ");
  EXPECT_EQ(text.Push("ols are").content, "<tools are");
  EXPECT_EQ(text.Push(" <tool_c").content, " ");
  EXPECT_EQ(text.Finish().content, "<tool_c");
}

TEST(ToolCallStream, NameLeavesFirstThenArgumentsInPieces) {
  ToolCallStreamParser parser(ToolCallFormat::kHermes);
  EXPECT_TRUE(parser.Push("<tool_call>\n{\"name\": \"get_weather\", ").empty());
  ParsedOutput out = parser.Push("\"arguments\": {\"city\": ");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].index, 0);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments, "{\"city\":");
  out = parser.Push("\"Pa");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "");
  EXPECT_EQ(out.tool_calls[0].arguments, "\"Pa");
  out = parser.Push("ris\"}}\n</tool_");  // the close tag may be starting
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments, "ris\"}");
  EXPECT_TRUE(parser.Push("call>\n<tool_call>{\"name\": \"b\"").empty());
  out = parser.Push(", \"arguments\": {}}</tool_call>");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].index, 1);
  EXPECT_EQ(out.tool_calls[0].name, "b");
  EXPECT_EQ(out.tool_calls[0].arguments, "{}");
  EXPECT_TRUE(parser.Finish().empty());
  EXPECT_FALSE(parser.unfinished());
}

TEST(ToolCallStream, Qwen3CoderArgumentsGrowPerParameter) {
  ToolCallStreamParser parser(ToolCallFormat::kQwen3CoderXml);
  ParsedOutput out = parser.Push("<tool_call>\n<function=f>\n<parameter=a>\n");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "f");
  EXPECT_EQ(out.tool_calls[0].arguments, "");
  out = parser.Push("12\n</parameter>\n<parameter=b>\nhi");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments, "{\"a\":12");
  out = parser.Push("\n</parameter>\n</function>\n</tool_call>");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments, ",\"b\":\"hi\"}");
  EXPECT_FALSE(parser.unfinished());
}

TEST(ToolCallStream, ACallCutByTheEndIsUnfinished) {
  ToolCallStreamParser parser(ToolCallFormat::kMistral);
  ParsedOutput out =
      parser.Push("[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Pa");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments, "{\"city\":\"Pa");
  EXPECT_FALSE(parser.unfinished());
  EXPECT_TRUE(parser.Finish().empty());
  EXPECT_TRUE(parser.unfinished());
}

TEST(ToolCallStream, BareJsonRepliesWaitUntilDecided) {
  ToolCallStreamParser parser(ToolCallFormat::kLlama3);
  EXPECT_TRUE(parser.Push("  ").empty());  // a call may still start
  EXPECT_TRUE(parser.Push("{\"name\": \"f\", \"parameters\": ").empty());
  ParsedOutput out = parser.Push("{\"x\": \"}\"}}");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments, "{\"x\":\"}\"}");
  ToolCallStreamParser prose(ToolCallFormat::kLlama3);
  EXPECT_EQ(prose.Push("Sure").content, "Sure");  // decided at once
}

TEST(ToolCallFormat, DetectedFromTheRealTemplates) {
  const std::vector<std::pair<std::string, ToolCallFormat>> want = {
      {"Qwen-Qwen2.5-7B-Instruct.jinja", ToolCallFormat::kHermes},
      {"Qwen-Qwen3-0.6B.jinja", ToolCallFormat::kHermes},
      {"Qwen-QwQ-32B.jinja", ToolCallFormat::kHermes},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
       ToolCallFormat::kHermes},
      {"Qwen3-Coder.jinja", ToolCallFormat::kQwen3CoderXml},
      {"meta-llama-Llama-3.1-8B-Instruct.jinja", ToolCallFormat::kLlama3},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja", ToolCallFormat::kLlama3},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", ToolCallFormat::kMistral},
      {"Mistral-Small-3.2-24B-Instruct-2506.jinja", ToolCallFormat::kMistral},
      {"ibm-granite-granite-3.3-2B-Instruct.jinja", ToolCallFormat::kGranite},
      {"microsoft-Phi-3.5-mini-instruct.jinja", ToolCallFormat::kGeneric},
      {"google-gemma-2-2b-it.jinja", ToolCallFormat::kGeneric},
  };
  for (const auto& [file, format] : want) {
    const std::string text =
        testing::ReadFile(testing::TestDataPath("templates/" + file));
    ASSERT_FALSE(text.empty()) << file;
    EXPECT_EQ(ToolCallFormatName(DetectToolCallFormat(text)),
              ToolCallFormatName(format))
        << file;
  }
  EXPECT_EQ(DetectToolCallFormat(""), ToolCallFormat::kGeneric);
}

}  // namespace
}  // namespace lumen::chat
