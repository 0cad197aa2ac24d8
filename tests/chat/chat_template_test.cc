// ChatTemplate: the --chat-template choice (auto, family, file name, path),
// the 112 expected renderings again through the whole chat path (message
// normalization included), OpenAI-shaped input (arguments as JSON strings,
// content as text parts, null content), capability probes and errors.

#include "chat/chat_template.h"

#include <fstream>
#include <string>

#include "absl/time/time.h"
#include "chat/jinja/builtins.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::chat {
namespace {

using ::testing::HasSubstr;

const Json& Expected() {
  static const Json* expected = new Json(Json::parse(
      testing::ReadFile(testing::TestDataPath("templates/expected.json")),
      nullptr, /*allow_exceptions=*/false));
  return *expected;
}

std::string TemplateText(const std::string& file) {
  return testing::ReadFile(testing::TestDataPath("templates/" + file));
}

ChatTemplateOptions FixedClock() {
  ChatTemplateOptions o;
  o.fixed_now = absl::FromCivil(absl::CivilSecond(2026, 11, 28, 12, 0, 0),
                                absl::UTCTimeZone());
  o.time_zone = absl::UTCTimeZone();
  return o;
}

ModelTemplates ModelWith(const std::string& file) {
  ModelTemplates m;
  m.chat_template = TemplateText(file);
  m.bos_token = Expected()["templates"][file]["bos_token"];
  m.eos_token = Expected()["templates"][file]["eos_token"];
  return m;
}

std::unique_ptr<ChatTemplate> Make(const ModelTemplates& m,
                                   absl::string_view choice = "auto") {
  auto t = ChatTemplate::Create(m, choice, FixedClock());
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

absl::StatusOr<std::string> RenderConversation(const ChatTemplate& t,
                                               const Json& c) {
  return t.Render(c["messages"], c.value("tools", Json()),
                  c.value("add_generation_prompt", true));
}

TEST(ChatTemplateCorpus, AllExpectedRenderingsThroughTheChatPath) {
  ASSERT_TRUE(Expected().contains("templates"));
  int cases = 0;
  for (auto t = Expected()["templates"].begin();
       t != Expected()["templates"].end(); ++t) {
    auto tmpl = Make(ModelWith(t.key()));
    ASSERT_NE(tmpl, nullptr) << t.key();
    EXPECT_EQ(tmpl->kind(), ChatTemplate::Kind::kModelFile);
    EXPECT_EQ(tmpl->description(), "tokenizer.chat_template");
    for (auto r = (*t)["renderings"].begin(); r != (*t)["renderings"].end();
         ++r) {
      ++cases;
      auto text =
          RenderConversation(*tmpl, Expected()["conversations"][r.key()]);
      if (r->contains("error")) {
        ASSERT_FALSE(text.ok()) << t.key() << " " << r.key();
        EXPECT_TRUE(jinja::IsRaisedError(text.status()));
        EXPECT_EQ("TemplateError: " + std::string(text.status().message()),
                  (*r)["error"].get<std::string>());
      } else {
        ASSERT_TRUE(text.ok())
            << t.key() << " " << r.key() << ": " << text.status();
        EXPECT_EQ(*text, (*r)["text"].get<std::string>())
            << t.key() << " " << r.key();
      }
    }
  }
  EXPECT_EQ(cases, 112);
}

// The OpenAI wire shapes render like the template-native ones.
TEST(ChatTemplateInput, OpenAiShapesRenderLikeExpected) {
  const Json& conversation =
      Expected()["conversations"]["tool-call-and-result"];
  for (const char* file :
       {"Qwen-Qwen3-0.6B.jinja", "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "mistralai-Mistral-Nemo-Instruct-2407.jinja",
        "openai-gpt-oss-120b.jinja", "Qwen-Qwen2.5-7B-Instruct.jinja"}) {
    auto tmpl = Make(ModelWith(file));
    ASSERT_NE(tmpl, nullptr);
    const std::string want = Expected()["templates"][file]["renderings"]
                                       ["tool-call-and-result"]["text"];
    Json messages = conversation["messages"];
    // arguments as the JSON string the OpenAI API sends
    Json& function = messages[2]["tool_calls"][0]["function"];
    function["arguments"] = function["arguments"].dump();
    // content as a list of text parts, and null content on the call
    messages[1]["content"] = Json::parse(
        R"([{"type": "text", "text": "What's the weather in Paris?"}])");
    messages[2]["content"] = nullptr;
    auto text = tmpl->Render(messages, conversation["tools"], true);
    ASSERT_TRUE(text.ok()) << file << ": " << text.status();
    EXPECT_EQ(*text, want) << file;
  }
}

TEST(ChatTemplateInput, TextPartsJoinWithNewlines) {
  auto tmpl = Make(ModelWith("Qwen-Qwen3-0.6B.jinja"));
  ASSERT_NE(tmpl, nullptr);
  EXPECT_FALSE(tmpl->capabilities().typed_content);
  auto text = tmpl->Render(Json::parse(R"([{"role": "user", "content": [
      {"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}])"),
                           nullptr, true);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "<|im_start|>user\none\ntwo<|im_end|>\n<|im_start|>assistant\n");
}

struct BadInputCase {
  const char* messages;
  const char* message;
};

const BadInputCase kBadInputs[] = {
    {"[]", "messages must be a non-empty list"},
    {"{}", "messages must be a non-empty list"},
    {"[1]", "messages[0] must be an object"},
    {R"([{"content": "x"}])", "messages[0].role must be a non-empty string"},
    {R"([{"role": "user", "content": 5}])",
     "messages[0].content must be a string, null or a list of text parts"},
    {R"([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])",
     "messages[0].content[0].type 'image_url' is not supported"},
    {R"([{"role": "user", "content": [{"type": "text"}]}])",
     "messages[0].content[0].text must be a string"},
    {R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "",
        "tool_calls": [{"id": "c1", "function": {"name": "f",
        "arguments": "{\"city\": "}}]}])",
     "messages[1].tool_calls[0].function.arguments is not valid JSON"},
    {R"([{"role": "user", "content": "q"}, {"role": "assistant",
        "tool_calls": [{"id": "c1", "function": {"arguments": "{}"}}]}])",
     "messages[1].tool_calls[0].function.name must be a non-empty string"},
    {R"([{"role": "user", "content": "q"}, {"role": "assistant",
        "tool_calls": {"id": "c1"}}])",
     "messages[1].tool_calls must be a list"},
    {R"([{"role": "tool", "content": "r", "tool_call_id": 7}])",
     "messages[0].tool_call_id must be a string"},
};

class BadInputTest : public ::testing::TestWithParam<BadInputCase> {};

TEST_P(BadInputTest, InvalidArgumentNamesTheField) {
  auto tmpl = Make(ModelWith("Qwen-Qwen3-0.6B.jinja"));
  ASSERT_NE(tmpl, nullptr);
  EXPECT_THAT(tmpl->Render(Json::parse(GetParam().messages), nullptr, true),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(Messages, BadInputTest,
                         ::testing::ValuesIn(kBadInputs));

TEST(ChatTemplateInput, ExtraVariablesReachTheTemplate) {
  auto tmpl = Make(ModelWith("Qwen-Qwen3-0.6B.jinja"));
  ASSERT_NE(tmpl, nullptr);
  const Json messages = Json::parse(R"([{"role": "user", "content": "Hi"}])");
  auto text = tmpl->Render(messages, nullptr, true,
                           Json::parse(R"({"enable_thinking": false})"));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            "<think>\n\n</think>\n\n");
  EXPECT_THAT(
      tmpl->Render(messages, nullptr, true, Json::parse(R"({"messages": []})")),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("'messages' cannot be set")));
  EXPECT_THAT(tmpl->Render(messages, Json::parse("{}"), true),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tools must be a list")));
}

TEST(ChatTemplateInput, TemplateErrorsKeepTheirMessage) {
  auto tmpl = Make(ModelWith("google-gemma-2-2b-it.jinja"));
  ASSERT_NE(tmpl, nullptr);
  auto text = tmpl->Render(Json::parse(R"([{"role": "system", "content": "s"},
      {"role": "user", "content": "u"}])"),
                           nullptr, true);
  EXPECT_THAT(text, StatusIs(absl::StatusCode::kInvalidArgument,
                             ::testing::Eq("System role not supported")));
  EXPECT_TRUE(jinja::IsRaisedError(text.status()));
}

TEST(ChatTemplateCapabilities, ProbesMatchWhatTheTemplatesDo) {
  struct Want {
    const char* file;
    bool system_role, tools, tool_calls, typed_content, null_content;
  };
  for (const Want& w : {
           // Gemma 2 refuses the tool message of the probe whatever the
           // content, so null content is not what breaks it.
           Want{"google-gemma-2-2b-it.jinja", false, false, false, false, true},
           // Qwen3 and Phi-3.5 concatenate the content: null breaks them.
           Want{"Qwen-Qwen3-0.6B.jinja", true, true, true, false, false},
           Want{"Qwen-Qwen2.5-7B-Instruct.jinja", true, true, true, false,
                true},
           Want{"microsoft-Phi-3.5-mini-instruct.jinja", true, false, false,
                false, false},
           Want{"Mistral-Small-3.2-24B-Instruct-2506.jinja", true, true, true,
                true, true},
           Want{"meta-llama-Llama-3.1-8B-Instruct.jinja", true, true, true,
                false, true},
       }) {
    auto tmpl = Make(ModelWith(w.file));
    ASSERT_NE(tmpl, nullptr);
    const ChatTemplate::Capabilities& c = tmpl->capabilities();
    EXPECT_EQ(c.system_role, w.system_role) << w.file;
    EXPECT_EQ(c.tools, w.tools) << w.file;
    EXPECT_EQ(c.tool_calls, w.tool_calls) << w.file;
    EXPECT_EQ(c.typed_content, w.typed_content) << w.file;
    EXPECT_EQ(c.null_content, w.null_content) << w.file;
  }
}

TEST(ChatTemplateChoice, AutoWithoutTemplateUsesTheFamilyOfTheSpecialTokens) {
  ModelTemplates m;
  m.special_tokens = {"<|begin_of_text|>", "<|start_header_id|>",
                      "<|end_header_id|>", "<|eot_id|>"};
  auto tmpl = Make(m);
  ASSERT_NE(tmpl, nullptr);
  EXPECT_EQ(tmpl->kind(), ChatTemplate::Kind::kFamily);
  EXPECT_EQ(tmpl->family(), ChatFamily::kLlama3);
  EXPECT_THAT(tmpl->description(),
              HasSubstr("family llama3 (the file has no template"));
  auto text = tmpl->Render(
      Json::parse(R"([{"role": "user", "content": "Hi"}])"), nullptr, true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // No markers at all: chatml, as llama.cpp.
  auto plain = Make(ModelTemplates{});
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->family(), ChatFamily::kChatML);
  EXPECT_THAT(plain->description(), HasSubstr("llama.cpp's default"));
}

TEST(ChatTemplateChoice, FamilyByName) {
  auto tmpl = Make(ModelWith("Qwen-Qwen3-0.6B.jinja"), "llama3");
  ASSERT_NE(tmpl, nullptr);
  EXPECT_EQ(tmpl->kind(), ChatTemplate::Kind::kFamily);
  EXPECT_EQ(tmpl->description(), "family llama3 (--chat-template)");
  const Json messages = Json::parse(
      R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}])");
  auto text = tmpl->Render(messages, nullptr, /*add_generation_prompt=*/false);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nYo"
            "<|eot_id|>");
  EXPECT_THAT(
      tmpl->Render(messages,
                   Expected()["conversations"]["tools-offered"]["tools"], true),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("family template cannot offer tools")));
  EXPECT_THAT(
      tmpl->Render(
          Expected()["conversations"]["tool-call-and-result"]["messages"],
          nullptr, true),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("messages[2].tool_calls cannot be rendered")));
}

TEST(ChatTemplateChoice, JinjaFileByPath) {
  const std::string dir = testing::MakeTempDir();
  const std::string path = dir + "/custom.jinja";
  std::ofstream(path)
      << "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n"
         "{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}";
  auto tmpl = Make(ModelWith("Qwen-Qwen3-0.6B.jinja"), path);
  ASSERT_NE(tmpl, nullptr);
  EXPECT_EQ(tmpl->kind(), ChatTemplate::Kind::kJinjaFile);
  EXPECT_EQ(tmpl->description(), "file " + path);
  auto text = tmpl->Render(
      Json::parse(R"([{"role": "user", "content": "Hi"}])"), nullptr, true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "[user] Hi\n[assistant] ");
  EXPECT_THAT(
      ChatTemplate::Create(ModelTemplates{}, dir + "/missing.jinja"),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.jinja")));
  std::ofstream(dir + "/bad.jinja") << "line one\n{% for x in %}";
  EXPECT_THAT(ChatTemplate::Create(ModelTemplates{}, dir + "/bad.jinja"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bad.jinja: line 2, column 13")));
}

TEST(ChatTemplateChoice, NamedTemplatesOfTheFile) {
  ModelTemplates m;
  m.chat_template = "PLAIN{{ messages|length }}";
  m.named_templates = {{"tool_use", "TOOLS{{ tools|length }}"},
                       {"rag", "RAG{{ documents|length }}"}};
  auto tmpl = Make(m);
  ASSERT_NE(tmpl, nullptr);
  EXPECT_TRUE(tmpl->has_tool_use_template());
  EXPECT_THAT(tmpl->description(),
              HasSubstr("tool_use for requests with tools"));
  const Json messages = Json::parse(R"([{"role": "user", "content": "Hi"}])");
  const Json tools = Expected()["conversations"]["tools-offered"]["tools"];
  EXPECT_EQ(*tmpl->Render(messages, nullptr, true), "PLAIN1");
  EXPECT_EQ(*tmpl->Render(messages, Json::array(), true), "PLAIN1");
  EXPECT_EQ(*tmpl->Render(messages, tools, true), "TOOLS2");
  auto rag = Make(m, "rag");
  ASSERT_NE(rag, nullptr);
  EXPECT_EQ(rag->description(), "tokenizer.chat_template.rag");
  EXPECT_EQ(*rag->Render(messages, nullptr, true,
                         Json::parse(R"({"documents": [1, 2, 3]})")),
            "RAG3");
  EXPECT_THAT(ChatTemplate::Create(m, "vicuna"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a template of the file (tool_use, rag)")));
}

TEST(ChatTemplateChoice, UncompilableFileTemplateFallsBackToItsFamily) {
  ModelTemplates m;
  m.chat_template =
      "{% for message in messages %}{{ '<|im_start|>' + message.role }}"
      "{% call weird() %}{% endcall %}{% endfor %}";
  auto tmpl = Make(m);
  ASSERT_NE(tmpl, nullptr);
  EXPECT_EQ(tmpl->family(), ChatFamily::kChatML);
  EXPECT_THAT(tmpl->description(),
              HasSubstr("the model's template does not compile: line 1"));
  m.chat_template = "{% call weird() %}{% endcall %}";
  EXPECT_THAT(
      ChatTemplate::Create(m, "auto"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("the model's chat template does not compile")));
}

}  // namespace
}  // namespace lumen::chat
