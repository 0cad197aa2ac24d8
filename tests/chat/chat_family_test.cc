// The family table (chat/chat_family.h): detection from a template's
// markers and the native rendering of each family. Moved from
// tests/engine/sampler_test.cc with the table itself.

#include "chat/chat_family.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::chat {
namespace {

using ::testing::HasSubstr;

struct TemplateCase {
  std::string family;
  std::string template_text;  // excerpt of the family's real template
  std::string want;
};

TEST(ChatFamilyTest, DetectsAndRendersEachFamily) {
  const std::vector<ChatTurn> turns = {{"system", "Be brief."},
                                       {"user", "Hi"},
                                       {"assistant", "Hello!"},
                                       {"user", "Bye"}};
  const std::vector<TemplateCase> cases = {
      {"chatml",
       "{% for message in messages %}{{'<|im_start|>' + message['role'] + "
       "'\\n' + "
       "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
       "<|im_start|>system\nBe "
       "brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
       "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|"
       ">\n"
       "<|im_start|>assistant\n"},
      {"llama3",
       "{% set content = '<|start_header_id|>' + message['role'] + "
       "'<|end_header_id|>\\n\\n'"
       "+ message['content'] | trim + '<|eot_id|>' %}",
       "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe "
       "brief.<|eot_id|>"
       "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
       "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
       "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
       "<|start_header_id|>assistant<|end_header_id|>\n\n"},
      {"llama2",
       "{% if loop.index0 == 0 and system_message != false %}{% set content = "
       "'<<SYS>>\\n' + "
       "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{{ "
       "bos_token + '[INST] ' "
       "+ content.strip() + ' [/INST]' }}",
       "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] "
       "Hello!</s><s>[INST] Bye [/INST]"},
      {"mistral",
       "{{ bos_token }}{% for message in messages %}{% if message['role'] == "
       "'user' %}{{ "
       "'[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ "
       "message['content'] + "
       "eos_token}}{% endif %}{% endfor %}",
       "<s>[INST] Be brief.\n\nHi [/INST]Hello!</s>[INST] Bye [/INST]"},
      {"gemma",
       "{{ bos_token }}{% for message in messages %}{{'<start_of_turn>' + role "
       "+ '\\n' + "
       "message['content'] | trim + '<end_of_turn>\\n'}}{% endfor %}",
       "<bos><start_of_turn>user\nBe "
       "brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
       "Hello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_"
       "turn>model\n"},
      {"phi3",
       "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + "
       "message['content'] + '<|end|>\\n'}}{% endfor %}{{ '<|assistant|>\\n' "
       "}}",
       "<|system|>\nBe "
       "brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
       "<|user|>\nBye<|end|>\n<|assistant|>\n"},
      {"zephyr",
       "{% for message in messages %}{% if message['role'] == 'user' %}{{ "
       "'<|user|>\\n' + "
       "message['content'] + eos_token }}{% endif %}{{ '<|assistant|>' }}{% "
       "endfor %}",
       "<|system|>\nBe "
       "brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\n"
       "Bye</s>\n<|assistant|>\n"},
  };
  for (const TemplateCase& c : cases) {
    auto family = DetectChatFamily(c.template_text);
    ASSERT_TRUE(family.ok()) << c.family << ": " << family.status();
    EXPECT_EQ(ChatFamilyName(*family), c.family);
    auto text = RenderChat(*family, c.template_text, turns);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, c.want) << c.family;
  }
}

TEST(ChatFamilyTest, QwenAddsItsDefaultSystemPrompt) {
  const std::string qwen =
      "{% if loop.first and messages[0]['role'] != 'system' %}{{ "
      "'<|im_start|>system\\nYou are "
      "a helpful assistant.<|im_end|>\\n' }}{% endif %}<|im_start|>";
  auto text = RenderChat(ChatFamily::kChatML, qwen, {{"user", "Hi"}});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "<|im_start|>system\nYou are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nHi"
            "<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatFamilyTest, ErrorsNameTheProblem) {
  EXPECT_THAT(
      DetectChatFamily("{{ messages | custom_format }}"),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          HasSubstr("unrecognized chat template (starts with \"{{ messages")));
  EXPECT_THAT(RenderChat(ChatFamily::kChatML, "", {{"robot", "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("messages[0].role 'robot'")));
  EXPECT_THAT(
      ChatFamilyFromName("vicuna"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'vicuna'")));
}

TEST(ChatFamilyTest, GenerationPromptIsOptional) {
  const std::vector<ChatTurn> turns = {{"user", "Hi"}, {"assistant", "Hello"}};
  for (ChatFamily f :
       {ChatFamily::kChatML, ChatFamily::kLlama3, ChatFamily::kGemma,
        ChatFamily::kPhi3, ChatFamily::kZephyr, ChatFamily::kLlama2,
        ChatFamily::kMistral}) {
    auto with = RenderChat(f, "", turns, /*add_generation_prompt=*/true);
    auto without = RenderChat(f, "", turns, /*add_generation_prompt=*/false);
    ASSERT_TRUE(with.ok() && without.ok()) << ChatFamilyName(f);
    // The prompt is a suffix of the rendering with it, and nothing else
    // differs; llama2 and mistral have no generation prompt.
    ASSERT_TRUE(absl::string_view(*with).substr(0, without->size()) == *without)
        << ChatFamilyName(f);
    const bool has_prompt =
        f != ChatFamily::kLlama2 && f != ChatFamily::kMistral;
    EXPECT_EQ(with->size() > without->size(), has_prompt) << ChatFamilyName(f);
  }
  EXPECT_EQ(*RenderChat(ChatFamily::kChatML, "", {{"user", "Hi"}}, false),
            "<|im_start|>user\nHi<|im_end|>\n");
}

}  // namespace
}  // namespace lumen::chat
