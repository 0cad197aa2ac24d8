// Tool calling on the HTTP path without a daemon: an OpenAI tool
// conversation translated to a GenerateRequest and back into template input
// renders as expected.json's tool-call-and-result does; the grammar of a
// required call accepts each family's call format (and nothing else), and
// what it accepts parses back into the call; the response formatter turns
// call markup into message.tool_calls and tool_calls deltas, never content.

#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "chat/chat_template.h"
#include "engine/constrained/constraint_cache.h"
#include "engine/constrained/gbnf_parser.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "server/http/json_fields.h"
#include "server/http/openai_request.h"
#include "server/http/openai_response.h"
#include "server/request_builder.h"
#include "server/tool_calls.h"
#include "tests/engine/constrained_test_util.h"
#include "tests/test_support.h"

namespace lumen::server::http {
namespace {

using chat::ToolCallFormat;
using ::testing::HasSubstr;

const Json& Expected() {
  static const Json* expected = new Json(Json::parse(
      testing::ReadFile(testing::TestDataPath("templates/expected.json")),
      nullptr, /*allow_exceptions=*/false));
  return *expected;
}

// The conversation as an OpenAI client sends it: arguments as JSON text.
Json ToolConversationBody() {
  const Json& c = Expected()["conversations"]["tool-call-and-result"];
  Json body = {{"messages", c["messages"]}, {"tools", c["tools"]}};
  Json& function = body["messages"][2]["tool_calls"][0]["function"];
  function["arguments"] = function["arguments"].dump();
  return body;
}

TEST(HttpToolsTest, ToolConversationRendersLikeExpectedJson) {
  absl::StatusOr<OpenAiRequest> r = FromChatCompletion(ToolConversationBody());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(ValidateGenerateRequest(r->request).ok());
  absl::StatusOr<chat::Json> messages = ChatMessagesJson(r->request);
  ASSERT_TRUE(messages.ok()) << messages.status();
  absl::StatusOr<ToolRequest> tools = ParseToolRequest(r->request);
  ASSERT_TRUE(tools.ok()) << tools.status();
  EXPECT_TRUE(tools->active());
  EXPECT_EQ(tools->choice.mode, chat::ToolChoice::Mode::kAuto);
  for (const char* file :
       {"Qwen-Qwen2.5-7B-Instruct.jinja", "Qwen-Qwen3-0.6B.jinja",
        "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "mistralai-Mistral-Nemo-Instruct-2407.jinja",
        "ibm-granite-granite-3.3-2B-Instruct.jinja"}) {
    SCOPED_TRACE(file);
    const Json& expected = Expected()["templates"][file];
    chat::ModelTemplates model;
    model.chat_template = testing::ReadFile(
        testing::TestDataPath(std::string("templates/") + file));
    model.bos_token = expected["bos_token"];
    model.eos_token = expected["eos_token"];
    chat::ChatTemplateOptions options;
    options.fixed_now = absl::FromCivil(
        absl::CivilSecond(2026, 11, 28, 12, 0, 0), absl::UTCTimeZone());
    options.time_zone = absl::UTCTimeZone();
    auto tmpl = chat::ChatTemplate::Create(model, "auto", options);
    ASSERT_TRUE(tmpl.ok()) << tmpl.status();
    absl::StatusOr<std::string> text =
        (*tmpl)->Render(*messages, tools->tools, true);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, expected["renderings"]["tool-call-and-result"]["text"]
                         .get<std::string>());
  }
}

struct FormatCase {
  ToolCallFormat format;
  std::string good;    // a get_weather call in the format
  std::string wrong;   // a call whose arguments break the schema
  std::string search;  // a search_docs call
};

// A get_weather call, one that breaks its schema and a search_docs call, in
// each family's format.
std::vector<FormatCase> FamilyCases() {
  const std::string weather =
      R"({"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}})";
  const std::string bad_unit =
      R"({"name": "get_weather", "arguments": {"city": "Paris", "unit": "kelvin"}})";
  const std::string search =
      R"({"name": "search_docs", "arguments": {"query": "cats", "top_k": 3}})";
  return {
      {ToolCallFormat::kHermes, "<tool_call>\n" + weather + "\n</tool_call>",
       "<tool_call>\n" + bad_unit + "\n</tool_call>",
       "<tool_call>\n" + search + "\n</tool_call>"},
      {ToolCallFormat::kGeneric, weather, bad_unit, search},
      {ToolCallFormat::kLlama3,
       R"({"name": "get_weather", "parameters": {"city": "Paris"}})",
       R"({"name": "get_weather", "parameters": {"city": 5}})",
       R"({"name": "search_docs", "parameters": {"query": "cats"}})"},
      {ToolCallFormat::kMistral, "[TOOL_CALLS][" + weather + "]",
       "[TOOL_CALLS][" + bad_unit + "]", "[TOOL_CALLS][" + search + "]"},
      {ToolCallFormat::kGranite, "<|tool_call|>[" + weather + "]",
       "<|tool_call|>[" + bad_unit + "]", "<|tool_call|>[" + search + "]"},
      // Qwen3-Coder: parameters as XML, values as JSON (strings quoted).
      {ToolCallFormat::kQwen3CoderXml,
       "<tool_call>\n<function=get_weather>\n<parameter=city>\n\"Paris\"\n"
       "</parameter>\n<parameter=unit>\n\"celsius\"\n</parameter>\n</"
       "function>\n</tool_call>",
       "<tool_call>\n<function=get_weather>\n<parameter=city>\n\"Paris\"\n"
       "</parameter>\n<parameter=unit>\n\"kelvin\"\n</parameter>\n</"
       "function>\n</tool_call>",
       "<tool_call>\n<function=search_docs>\n<parameter=query>\n\"cats\"\n"
       "</parameter>\n<parameter=top_k>\n3\n</parameter>\n</function>\n</"
       "tool_call>"},
  };
}

TEST(HttpToolsTest, RequiredGrammarAcceptsTheFamilysCallsOnly) {
  const std::string weather =
      R"({"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}})";
  const std::string search =
      R"({"name": "search_docs", "arguments": {"query": "cats", "top_k": 3}})";
  const std::vector<FormatCase> cases = FamilyCases();
  Json body = ToolConversationBody();
  body["messages"] = Json::parse(R"([{"role": "user", "content": "hi"}])");
  body["parallel_tool_calls"] = false;
  for (const FormatCase& c : cases) {
    SCOPED_TRACE(chat::ToolCallFormatName(c.format));
    for (const bool named : {false, true}) {
      body["tool_choice"] =
          named
              ? Json::parse(
                    R"({"type": "function", "function": {"name": "get_weather"}})")
              : Json("required");
      absl::StatusOr<OpenAiRequest> r = FromChatCompletion(body);
      ASSERT_TRUE(r.ok()) << r.status();
      absl::StatusOr<ToolRequest> tools = ParseToolRequest(r->request);
      ASSERT_TRUE(tools.ok()) << tools.status();
      absl::StatusOr<std::string> gbnf = ToolCallGrammar(c.format, *tools);
      ASSERT_TRUE(gbnf.ok()) << gbnf.status();
      absl::StatusOr<engine::constrained::Grammar> grammar =
          engine::constrained::ParseGbnf(*gbnf);
      ASSERT_TRUE(grammar.ok()) << grammar.status() << "\n" << *gbnf;
      EXPECT_TRUE(testing::GrammarMatches(*grammar, c.good)) << *gbnf;
      EXPECT_FALSE(testing::GrammarMatches(*grammar, c.wrong));
      EXPECT_EQ(testing::GrammarMatches(*grammar, c.search), !named);
      // Not two calls: parallel_tool_calls is false.
      EXPECT_FALSE(testing::GrammarMatches(*grammar, c.good + c.good));
      EXPECT_FALSE(testing::GrammarMatches(*grammar, "Sure! " + c.good));
      // What the grammar accepts is the call for the family's parser.
      chat::ParsedOutput parsed = chat::ParseToolCalls(c.format, c.good);
      ASSERT_EQ(parsed.tool_calls.size(), 1u);
      EXPECT_EQ(parsed.tool_calls[0].name, "get_weather");
      EXPECT_EQ(Json::parse(parsed.tool_calls[0].arguments)["city"], "Paris");
      EXPECT_EQ(parsed.content, "");
    }
  }
  // Several calls when parallel_tool_calls is true (the default).
  body.erase("parallel_tool_calls");
  body["tool_choice"] = "required";
  absl::StatusOr<OpenAiRequest> r = FromChatCompletion(body);
  ASSERT_TRUE(r.ok());
  absl::StatusOr<ToolRequest> tools = ParseToolRequest(r->request);
  ASSERT_TRUE(tools.ok());
  absl::StatusOr<std::string> gbnf =
      ToolCallGrammar(ToolCallFormat::kHermes, *tools);
  ASSERT_TRUE(gbnf.ok());
  absl::StatusOr<engine::constrained::Grammar> grammar =
      engine::constrained::ParseGbnf(*gbnf);
  ASSERT_TRUE(grammar.ok());
  const std::string two = "<tool_call>\n" + weather + "\n</tool_call>\n" +
                          "<tool_call>\n" + search + "\n</tool_call>";
  EXPECT_TRUE(testing::GrammarMatches(*grammar, two));
  EXPECT_EQ(
      chat::ParseToolCalls(ToolCallFormat::kHermes, two).tool_calls.size(), 2u);
  // Qwen3-Coder's XML: several calls too, a required parameter cannot be
  // left out, and parameters come in the schema's order.
  absl::StatusOr<std::string> xml =
      ToolCallGrammar(ToolCallFormat::kQwen3CoderXml, *tools);
  ASSERT_TRUE(xml.ok()) << xml.status();
  absl::StatusOr<engine::constrained::Grammar> xml_grammar =
      engine::constrained::ParseGbnf(*xml);
  ASSERT_TRUE(xml_grammar.ok()) << xml_grammar.status() << "\n" << *xml;
  const FormatCase coder = FamilyCases().back();
  ASSERT_EQ(coder.format, ToolCallFormat::kQwen3CoderXml);
  const std::string two_xml = coder.good + "\n" + coder.search;
  EXPECT_TRUE(testing::GrammarMatches(*xml_grammar, two_xml)) << *xml;
  EXPECT_EQ(chat::ParseToolCalls(ToolCallFormat::kQwen3CoderXml, two_xml)
                .tool_calls.size(),
            2u);
  EXPECT_TRUE(testing::GrammarMatches(
      *xml_grammar,
      "<tool_call>\n<function=get_weather>\n<parameter=city>\n\"Oslo\"\n"
      "</parameter>\n</function>\n</tool_call>"));
  EXPECT_FALSE(testing::GrammarMatches(
      *xml_grammar,
      "<tool_call>\n<function=get_weather>\n<parameter=unit>\n\"celsius\"\n"
      "</parameter>\n</function>\n</tool_call>"));
  EXPECT_FALSE(testing::GrammarMatches(
      *xml_grammar,
      "<tool_call>\n<function=search_docs>\n<parameter=top_k>\n3\n"
      "</parameter>\n<parameter=query>\n\"cats\"\n</parameter>\n</"
      "function>\n</tool_call>"));
  // A string value cannot close its parameter or call early: no raw '<' in
  // strings, only its escape, which the parser reads back.
  auto city_call = [](const std::string& value) {
    return "<tool_call>\n<function=get_weather>\n<parameter=city>\n" + value +
           "\n</parameter>\n</function>\n</tool_call>";
  };
  EXPECT_FALSE(
      testing::GrammarMatches(*xml_grammar, city_call(R"("a</parameter>b")")));
  EXPECT_FALSE(
      testing::GrammarMatches(*xml_grammar, city_call(R"("a</tool_call>b")")));
  const std::string escaped = city_call(R"("a\u003c/parameter>b")");
  EXPECT_TRUE(testing::GrammarMatches(*xml_grammar, escaped));
  chat::ParsedOutput back =
      chat::ParseToolCalls(ToolCallFormat::kQwen3CoderXml, escaped);
  ASSERT_EQ(back.tool_calls.size(), 1u);
  EXPECT_EQ(Json::parse(back.tool_calls[0].arguments)["city"],
            "a</parameter>b");
  // A parameter name the XML cannot carry back is refused.
  ToolRequest angled = *tools;
  angled.tools[0]["function"]["parameters"]["properties"]["a>b"] =
      Json{{"type", "integer"}};
  absl::StatusOr<std::string> no_form =
      ToolCallGrammar(ToolCallFormat::kQwen3CoderXml, angled);
  EXPECT_EQ(no_form.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(no_form.status()), "tool_choice");
  // A parameter schema that is not one object with properties has no XML
  // form: a 400 naming tool_choice.
  ToolRequest odd = *tools;
  odd.tools[0]["function"]["parameters"] =
      Json::parse(R"({"anyOf": [{"type": "object"}, {"type": "null"}]})");
  absl::StatusOr<std::string> refused =
      ToolCallGrammar(ToolCallFormat::kQwen3CoderXml, odd);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(refused.status()), "tool_choice");
}

// The required-call grammar of `tool` in `format`, compiled on the cache's
// vocabulary and armed with `trigger` (as the engine arms a lazy grammar).
absl::StatusOr<engine::constrained::ConstraintState> ArmedState(
    engine::constrained::ConstraintCache* cache, ToolCallFormat format,
    const ToolRequest& tool, const std::string& trigger) {
  absl::StatusOr<std::string> gbnf = ToolCallGrammar(format, tool);
  if (!gbnf.ok()) return gbnf.status();
  auto compiled =
      cache->Get({engine::constrained::ConstraintKind::kGrammar, *gbnf});
  if (!compiled.ok()) return compiled.status();
  auto state = (*compiled)->NewState();
  if (!state.ok()) return state.status();
  if (absl::Status s = state->AcceptText(trigger); !s.ok()) return s;
  return state;
}

// tool_choice "auto" is lazy: free text until the family's trigger, then
// the required-call grammar from the trigger's first byte. The trigger must
// begin every call the grammar accepts, or the lazy grammar would never
// take over; the engine's constraint state takes the call text through
// AcceptText (as the engine feeds it when the trigger shows up) on a real
// vocabulary.
TEST(HttpToolsTest, AutoGrammarTakesOverAtEachFamilysTrigger) {
  auto file = engine::GgufFile::Open(
      lumen::testing::TestDataPath("models/stories260K.gguf"));
  ASSERT_TRUE(file.ok());
  auto tokenizer = engine::Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tokenizer.ok());
  engine::constrained::ConstraintCache cache(**tokenizer);
  Json body = ToolConversationBody();
  body["messages"] = Json::parse(R"([{"role": "user", "content": "hi"}])");
  body["parallel_tool_calls"] = false;
  body["tool_choice"] = "auto";
  absl::StatusOr<OpenAiRequest> r = FromChatCompletion(body);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<ToolRequest> tools = ParseToolRequest(r->request);
  ASSERT_TRUE(tools.ok()) << tools.status();
  ToolRequest any = *tools;
  any.choice.mode = chat::ToolChoice::Mode::kRequired;
  for (const FormatCase& c : FamilyCases()) {
    SCOPED_TRACE(chat::ToolCallFormatName(c.format));
    const ToolTrigger t = ToolCallTrigger(c.format, /*parallel=*/false);
    const std::string& trigger = t.text;
    ASSERT_FALSE(trigger.empty());
    // Bare JSON calls only count at the start of the reply (the parser
    // looks for them there); markup counts anywhere.
    EXPECT_EQ(t.at_start, c.format == ToolCallFormat::kGeneric ||
                              c.format == ToolCallFormat::kLlama3);
    EXPECT_TRUE(absl::StartsWith(c.good, trigger)) << trigger;
    // The call, fed as the engine feeds it: the trigger (with whatever its
    // token carried on), then the rest.
    auto state = ArmedState(&cache, c.format, any, trigger);
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_FALSE(state->IsAccepting());
    ASSERT_TRUE(state->AcceptText(c.good.substr(trigger.size())).ok());
    EXPECT_TRUE(state->IsAccepting());
    // A call that breaks the schema is refused once the trigger has armed
    // the grammar, and a refused text leaves the state where it was.
    auto strict = ArmedState(&cache, c.format, any, trigger);
    ASSERT_TRUE(strict.ok());
    EXPECT_EQ(strict->AcceptText(c.wrong.substr(trigger.size())).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(strict->AcceptText(c.good.substr(trigger.size())).ok());
  }
  // Several calls: the generic format's trigger is its list object, and
  // the parallel grammar takes a call list from it.
  const ToolTrigger list =
      ToolCallTrigger(ToolCallFormat::kGeneric, /*parallel=*/true);
  EXPECT_EQ(list.text, R"({"tool_calls")");
  EXPECT_TRUE(list.at_start);
  ToolRequest many = any;
  many.parallel = true;
  auto state = ArmedState(&cache, ToolCallFormat::kGeneric, many, list.text);
  ASSERT_TRUE(state.ok()) << state.status();
  const std::string weather = FamilyCases()[1].good;  // generic: the object
  ASSERT_TRUE(state->AcceptText(": [" + weather + ", " + weather + "]}").ok());
  EXPECT_TRUE(state->IsAccepting());
}

// The request path sets the lazy grammar for "auto" (and none for "none"):
// on Qwen2.5's template (Hermes calls, <tool_call>), Mistral Nemo's
// ([TOOL_CALLS]) and not on Mistral Small 3.2's, whose v11 call form the
// constrained grammar does not produce.
TEST(HttpToolsTest, AutoRequestsCarryALazyGrammar) {
  auto file = engine::GgufFile::Open(
      lumen::testing::TestDataPath("models/stories260K.gguf"));
  ASSERT_TRUE(file.ok());
  auto tokenizer = engine::Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tokenizer.ok());
  const std::pair<const char*, const char*> cases[] = {
      {"Qwen-Qwen2.5-7B-Instruct.jinja", "<tool_call>"},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "[TOOL_CALLS]"},
      {"Mistral-Small-3.2-24B-Instruct-2506.jinja", ""},
  };
  for (const auto& [file_name, trigger] : cases) {
    SCOPED_TRACE(file_name);
    auto tmpl = chat::ChatTemplate::Create(
        chat::ModelTemplates{},
        lumen::testing::TestDataPath(std::string("templates/") + file_name));
    ASSERT_TRUE(tmpl.ok()) << tmpl.status();
    const ModelContext model{"stories", tokenizer->get(), 2048, tmpl->get()};
    Json body = ToolConversationBody();
    body["messages"] = Json::parse(R"([{"role": "user", "content": "hi"}])");
    for (const std::string choice : {"auto", "none", "required"}) {
      SCOPED_TRACE(choice);
      body["tool_choice"] = choice;
      absl::StatusOr<OpenAiRequest> r = FromChatCompletion(body);
      ASSERT_TRUE(r.ok()) << r.status();
      absl::StatusOr<BuiltRequest> built =
          BuildGenerateParams(r->request, model, {}, RequestLimits{});
      ASSERT_TRUE(built.ok()) << built.status();
      const bool lazy = choice == "auto" && *trigger != '\0';
      EXPECT_EQ(built->tool_grammar.empty(),
                choice == "none" || (choice == "auto" && !lazy));
      EXPECT_EQ(built->tool_trigger.text, lazy ? trigger : "");
      EXPECT_FALSE(built->tool_trigger.at_start);
    }
  }
}

// Tools whose parameter schemas use local references: $defs and
// definitions, a recursive $defs entry, and a recursive reference to the
// parameters' own root ("#").
Json RefTools() {
  return Json::parse(R"([
    {"type": "function", "function": {"name": "make_tree", "parameters": {
      "type": "object",
      "properties": {"root": {"$ref": "#/$defs/node"},
                     "label": {"$ref": "#/definitions/label"}},
      "required": ["root"], "additionalProperties": false,
      "$defs": {"node": {"type": "object",
        "properties": {"v": {"type": "integer", "minimum": 0, "maximum": 9},
                       "kids": {"type": "array", "maxItems": 2,
                                "items": {"$ref": "#/$defs/node"}}},
        "required": ["v"], "additionalProperties": false}},
      "definitions": {"label": {"enum": ["a", "b"]}}}}},
    {"type": "function", "function": {"name": "echo", "parameters": {
      "type": "object",
      "properties": {"text": {"type": "string", "maxLength": 5},
                     "next": {"$ref": "#"}},
      "required": ["text"], "additionalProperties": false}}}])");
}

absl::StatusOr<std::string> RefGrammar(ToolCallFormat format, const Json& tools,
                                       const Json& choice, bool parallel) {
  Json body = {
      {"messages", Json::parse(R"([{"role": "user", "content": "hi"}])")},
      {"tools", tools},
      {"tool_choice", choice},
      {"parallel_tool_calls", parallel}};
  absl::StatusOr<OpenAiRequest> r = FromChatCompletion(body);
  if (!r.ok()) return r.status();
  absl::StatusOr<ToolRequest> parsed = ParseToolRequest(r->request);
  if (!parsed.ok()) return parsed.status();
  return ToolCallGrammar(format, *parsed);
}

TEST(HttpToolsTest, RequiredGrammarFollowsLocalRefsAndRecursion) {
  const std::string tree =
      R"({"name": "make_tree", "arguments": {"root": {"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}, {"v": 0}]}]}, "label": "a"}})";
  const std::string chain =
      R"({"name": "echo", "arguments": {"text": "hi", "next": {"text": "yo", "next": {"text": "z"}}}})";
  const std::vector<std::string> wrong = {
      // A node without v, deep in the recursion.
      R"({"name": "make_tree", "arguments": {"root": {"v": 1, "kids": [{"kids": []}]}}})",
      // An extra key in a node, a value out of range, three kids.
      R"({"name": "make_tree", "arguments": {"root": {"v": 1, "w": 2}}})",
      R"({"name": "make_tree", "arguments": {"root": {"v": 12}}})",
      R"({"name": "make_tree", "arguments": {"root": {"v": 1, "kids": [{"v": 1}, {"v": 1}, {"v": 1}]}}})",
      // Not one of the definitions' labels.
      R"({"name": "make_tree", "arguments": {"root": {"v": 1}, "label": "c"}})",
      // The recursive "#" reference still requires text at every level.
      R"({"name": "echo", "arguments": {"text": "hi", "next": {"next": {"text": "z"}}}})",
      R"({"name": "echo", "arguments": {"text": "hi", "next": {"text": "toolong"}}})",
  };
  struct Wrap {
    ToolCallFormat format;
    bool parallel;
    std::string before, after;
  };
  for (const Wrap& w : std::vector<Wrap>{
           {ToolCallFormat::kHermes, true, "<tool_call>\n", "\n</tool_call>"},
           {ToolCallFormat::kGeneric, false, "", ""},
           {ToolCallFormat::kGeneric, true, "{\"tool_calls\": [", "]}"},
           {ToolCallFormat::kMistral, true, "[TOOL_CALLS][", "]"}}) {
    SCOPED_TRACE(absl::StrCat(chat::ToolCallFormatName(w.format),
                              w.parallel ? " parallel" : ""));
    absl::StatusOr<std::string> gbnf =
        RefGrammar(w.format, RefTools(), "required", w.parallel);
    ASSERT_TRUE(gbnf.ok()) << gbnf.status();
    absl::StatusOr<engine::constrained::Grammar> grammar =
        engine::constrained::ParseGbnf(*gbnf);
    ASSERT_TRUE(grammar.ok()) << grammar.status() << "\n" << *gbnf;
    EXPECT_TRUE(testing::GrammarMatches(*grammar, w.before + tree + w.after))
        << *gbnf;
    EXPECT_TRUE(testing::GrammarMatches(*grammar, w.before + chain + w.after))
        << *gbnf;
    for (const std::string& bad : wrong) {
      EXPECT_FALSE(testing::GrammarMatches(*grammar, w.before + bad + w.after))
          << bad;
    }
  }
  // Llama 3.1's {"name", "parameters"}, one named function.
  const Json named =
      Json::parse(R"({"type": "function", "function": {"name": "make_tree"}})");
  absl::StatusOr<std::string> gbnf =
      RefGrammar(ToolCallFormat::kLlama3, RefTools(), named, false);
  ASSERT_TRUE(gbnf.ok()) << gbnf.status();
  absl::StatusOr<engine::constrained::Grammar> grammar =
      engine::constrained::ParseGbnf(*gbnf);
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  auto llama = [](std::string call) {
    const size_t at = call.find("\"arguments\"");
    return call.replace(at, 11, "\"parameters\"");
  };
  EXPECT_TRUE(testing::GrammarMatches(*grammar, llama(tree)));
  EXPECT_FALSE(testing::GrammarMatches(*grammar, llama(chain)));
  EXPECT_FALSE(testing::GrammarMatches(*grammar, llama(wrong[0])));

  // A remote reference cannot be followed: 400 naming tool_choice (with
  // "auto" the tool is accepted and the lazy grammar stays off).
  Json remote = RefTools();
  remote[1]["function"]["parameters"]["properties"]["next"]["$ref"] =
      "https://example.com/schema.json";
  absl::StatusOr<std::string> refused =
      RefGrammar(ToolCallFormat::kHermes, remote, "required", true);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("is not local")));
  EXPECT_THAT(refused.status().message(), HasSubstr("'echo'"));
  EXPECT_EQ(FieldOf(refused.status()), "tool_choice");
  // Only the chosen tool's schema is compiled.
  EXPECT_TRUE(RefGrammar(ToolCallFormat::kHermes, remote, named, true).ok());
  // A local pointer that resolves nowhere.
  Json dangling = RefTools();
  dangling[0]["function"]["parameters"]["properties"]["root"]["$ref"] =
      "#/$defs/nothing";
  EXPECT_THAT(RefGrammar(ToolCallFormat::kHermes, dangling, named, true),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("does not resolve")));
}

TEST(HttpToolsTest, ToolCallOutputGivesIdsAndIndexes) {
  ToolCallOutput out(ToolCallFormat::kHermes);
  const std::string call =
      "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
  chat::ParsedOutput first = out.Push("Hi." + call + "\n" + call.substr(0, 9));
  EXPECT_EQ(first.content, "Hi.");
  ASSERT_EQ(first.tool_calls.size(), 1u);
  EXPECT_EQ(first.tool_calls[0].index, 0);
  EXPECT_TRUE(absl::StartsWith(first.tool_calls[0].id, "call_"));
  EXPECT_EQ(out.FinishReason("stop"), "tool_calls");
  chat::ParsedOutput rest = out.Push(call.substr(9));
  chat::ParsedOutput last = out.Finish();
  rest.tool_calls.insert(rest.tool_calls.end(), last.tool_calls.begin(),
                         last.tool_calls.end());
  ASSERT_EQ(rest.tool_calls.size(), 1u);
  EXPECT_EQ(rest.tool_calls[0].index, 1);
  EXPECT_NE(rest.tool_calls[0].id, first.tool_calls[0].id);
  EXPECT_EQ(out.FinishReason("stop"), "tool_calls");
  // Mistral's calls keep the id the model wrote before the arguments; an
  // id written after them comes too late for the call's first piece, and
  // the call gets 9 letters and digits, the only ids Mistral's templates
  // take back in the next turn.
  ToolCallOutput mistral(ToolCallFormat::kMistral);
  chat::ParsedOutput m = mistral.PushAll(
      R"([TOOL_CALLS]f[CALL_ID]abc123XYZ[ARGS]{})"
      R"([TOOL_CALLS][{"name": "g", "arguments": {}, "id": "zzzzzzzzz"}])");
  ASSERT_EQ(m.tool_calls.size(), 2u);
  EXPECT_EQ(m.tool_calls[0].id, "abc123XYZ");
  EXPECT_NE(m.tool_calls[1].id, "zzzzzzzzz");
  EXPECT_TRUE(
      std::regex_match(m.tool_calls[1].id, std::regex("[A-Za-z0-9]{9}")))
      << m.tool_calls[1].id;
  // A call cut inside its arguments: the finish reason stays the engine's.
  ToolCallOutput cut(ToolCallFormat::kHermes);
  chat::ParsedOutput c =
      cut.PushAll(R"(<tool_call>{"name": "f", "arguments": {"a": 1)");
  ASSERT_EQ(c.tool_calls.size(), 1u);
  EXPECT_EQ(c.tool_calls[0].arguments, R"({"a":1)");
  EXPECT_EQ(cut.FinishReason("length"), "length");
}

FormatOptions ToolFormat() {
  FormatOptions o;
  o.id = "chatcmpl-1";
  o.model = "m";
  o.tool_format = ToolCallFormat::kHermes;
  return o;
}

engine::GenerationDelta Text(const std::string& text) {
  engine::GenerationDelta d;
  d.text = text;
  return d;
}

TEST(HttpToolsTest, FormatterTurnsCallMarkupIntoToolCalls) {
  const std::string output =
      "Let me look.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
      "{\"city\": \"Paris\"}}\n</tool_call>";
  engine::GenerationDelta all = Text(output);
  all.finished = true;
  all.finish_reason = "stop";
  CompletionFormatter whole(ToolFormat());
  const Json r = whole.Complete(all, {}, 0);
  const Json& choice = r["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["content"], "Let me look.");
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
  const Json& call = choice["message"]["tool_calls"][0];
  EXPECT_TRUE(absl::StartsWith(call["id"].get<std::string>(), "call_"));
  EXPECT_EQ(call["id"].get<std::string>().size(), 29u);
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(call["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_FALSE(call.contains("index"));

  // Only a call: content is null.
  all.text = output.substr(std::string("Let me look.").size());
  const Json only = CompletionFormatter(ToolFormat()).Complete(all, {}, 0);
  EXPECT_TRUE(only["choices"][0]["message"]["content"].is_null());

  // Streamed three bytes at a time: the content deltas hold no markup; the
  // call's first delta has its index, id, type and name, later ones only
  // append to its arguments; the finish reason is tool_calls.
  CompletionFormatter stream(ToolFormat());
  std::string content;
  std::vector<Json> calls;
  int pieces = 0;
  auto take = [&](const Json& chunk) {
    if (chunk.is_null()) return;
    const Json& delta = chunk["choices"][0]["delta"];
    if (delta.contains("content")) content += delta["content"];
    if (delta.contains("tool_calls")) {
      for (const Json& c : delta["tool_calls"]) {
        ++pieces;
        if (c["index"] == calls.size()) {
          calls.push_back(c);
          continue;
        }
        ASSERT_LT(c["index"].get<size_t>(), calls.size()) << c;
        EXPECT_EQ(c.size(), 2u) << c;  // index and function
        EXPECT_EQ(c["function"].size(), 1u) << c;
        Json& to = calls[c["index"].get<size_t>()]["function"]["arguments"];
        to = to.get<std::string>() +
             c["function"]["arguments"].get<std::string>();
      }
    }
  };
  for (size_t i = 0; i < output.size(); i += 3) {
    take(stream.DeltaChunk(Text(output.substr(i, 3))));
    EXPECT_EQ(content.find('<'), std::string::npos) << content;
  }
  take(stream.FlushChunk());
  EXPECT_EQ(content, "Let me look.");
  EXPECT_GT(pieces, 3);  // {"city":"Paris"} left in pieces
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["index"], 0);
  EXPECT_TRUE(absl::StartsWith(calls[0]["id"].get<std::string>(), "call_"));
  EXPECT_EQ(calls[0]["type"], "function");
  EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
  EXPECT_EQ(calls[0]["function"]["arguments"], R"({"city":"Paris"})");
  const Json finish = stream.FinishChunk(all, 0);
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "tool_calls");

  // Text that only looks like the start of markup ends up as content.
  CompletionFormatter plain(ToolFormat());
  content.clear();
  calls.clear();
  take(plain.DeltaChunk(Text("a <tool")));
  take(plain.FlushChunk());
  EXPECT_EQ(content, "a <tool");
  EXPECT_TRUE(calls.empty());
  EXPECT_EQ(plain.FinishChunk(all, 0)["choices"][0]["finish_reason"], "stop");

  // max_tokens cut the call: it stays a call, with the arguments written,
  // and the finish reason says so ("length", as OpenAI's does).
  engine::GenerationDelta cut =
      Text(output.substr(0, output.size() - 20));  // ..."P
  cut.finished = true;
  cut.finish_reason = "length";
  const Json partial = CompletionFormatter(ToolFormat()).Complete(cut, {}, 0);
  EXPECT_EQ(partial["choices"][0]["finish_reason"], "length");
  ASSERT_EQ(partial["choices"][0]["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(partial["choices"][0]["message"]["tool_calls"][0]["function"]
                   ["arguments"],
            R"({"city":"P)");
}

}  // namespace
}  // namespace lumen::server::http
