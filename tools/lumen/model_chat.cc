// `lumen model render-chat FILE --messages JSON [--tools JSON]`: the prompt a
// chat request becomes, for users who debug prompts; and the chat-template
// summary of `lumen model inspect`.

#include "tools/lumen/model_chat.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/flags.h"
#include "chat/gguf_templates.h"
#include "tools/lumen/commands.h"

namespace lumen::tools {

ChatTemplateSummary SummarizeChatTemplate(const engine::GgufFile& file,
                                          const engine::Vocab& vocab) {
  const chat::ModelTemplates model = chat::ReadModelTemplates(file, vocab);
  ChatTemplateSummary s;
  s.present = !model.chat_template.empty();
  s.bytes = model.chat_template.size();
  for (const auto& [name, text] : model.named_templates)
    s.named.push_back(name);
  auto tmpl = chat::ChatTemplate::Create(model, "auto");
  if (!tmpl.ok()) {
    s.used = std::string(tmpl.status().message());
    return s;
  }
  s.usable = true;
  s.used = (*tmpl)->description();
  s.jinja = (*tmpl)->kind() != chat::ChatTemplate::Kind::kFamily;
  s.capabilities = (*tmpl)->capabilities();
  return s;
}

std::string ChatTemplateLine(const ChatTemplateSummary& s) {
  std::string line;
  if (!s.usable) {
    line = absl::StrCat("present, unusable: ", s.used);
  } else if (!s.present) {
    line = absl::StrCat("absent; renders as ", s.used);
  } else if (!s.jinja) {
    line = absl::StrCat("present; renders as ", s.used);
  } else {
    std::vector<std::string> can;
    if (s.capabilities.tools) can.push_back("tools");
    if (s.capabilities.tool_calls) can.push_back("tool calls");
    if (!s.capabilities.system_role) can.push_back("no system role");
    line = absl::StrCat(s.used, " (Jinja, ", s.bytes, " bytes",
                        can.empty() ? "" : "; ", absl::StrJoin(can, ", "), ")");
  }
  if (!s.named.empty()) {
    absl::StrAppend(&line, "; named: ", absl::StrJoin(s.named, ", "));
  }
  return line;
}

namespace {

// A JSON flag value: inline JSON, or @PATH to read it from a file.
absl::StatusOr<chat::Json> ParseJsonFlag(const std::string& flag,
                                         const std::string& value) {
  std::string text = value;
  if (!value.empty() && value[0] == '@') {
    std::ifstream in(value.substr(1), std::ios::binary);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("--", flag, ": cannot read ", value.substr(1)));
    }
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  chat::Json j = chat::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " is not valid JSON"));
  }
  return j;
}

}  // namespace

int ModelRenderChat(const Args& args) {
  std::string messages_flag, tools_flag, vars_flag, choice = "auto";
  bool no_generation_prompt = false, quiet = false;
  FlagSet flags(
      "lumen model render-chat FILE --messages JSON [--tools JSON] "
      "[--chat-template auto|FAMILY|NAME|PATH.jinja] [--vars JSON] "
      "[--no-generation-prompt]\n"
      "  JSON values are inline or @PATH. Prints the prompt exactly (no "
      "newline added); which template rendered it goes to stderr.");
  flags.String(
      "messages", &messages_flag,
      "chat messages, OpenAI style: [{\"role\": ..., \"content\": ...}]");
  flags.String("tools", &tools_flag, "function tools, OpenAI style");
  flags.String("chat-template", &choice,
               "auto (the file's template), a family (chatml, llama2, llama3, "
               "mistral, gemma, phi3, zephyr), a template name of the file, or "
               "a path to a .jinja file");
  flags.String("vars", &vars_flag,
               "extra template variables, e.g. {\"enable_thinking\": false}");
  flags.Bool("no-generation-prompt", &no_generation_prompt,
             "end after the last message (no assistant prompt)");
  flags.Bool("quiet", &quiet, "do not name the template on stderr");
  if (auto rc = ParseOrHelp(&flags, args)) return *rc;
  if (flags.positional().size() != 1)
    return Fail("expected one FILE\n" + flags.Help(), 2);
  if (messages_flag.empty()) return Fail("--messages is required", 2);
  auto messages = ParseJsonFlag("messages", messages_flag);
  if (!messages.ok()) return Fail(std::string(messages.status().message()), 2);
  chat::Json tools, vars = chat::Json::object();
  if (!tools_flag.empty()) {
    auto t = ParseJsonFlag("tools", tools_flag);
    if (!t.ok()) return Fail(std::string(t.status().message()), 2);
    tools = std::move(*t);
  }
  if (!vars_flag.empty()) {
    auto v = ParseJsonFlag("vars", vars_flag);
    if (!v.ok()) return Fail(std::string(v.status().message()), 2);
    vars = std::move(*v);
  }
  auto file = engine::GgufFile::Open(flags.positional()[0]);
  if (!file.ok()) return Fail(std::string(file.status().message()));
  auto vocab = engine::Vocab::FromGguf(**file);
  if (!vocab.ok()) return Fail(std::string(vocab.status().message()));
  auto tmpl = chat::ChatTemplate::Create(
      chat::ReadModelTemplates(**file, **vocab), choice);
  if (!tmpl.ok()) return Fail(std::string(tmpl.status().message()));
  if (!quiet) {
    std::fprintf(stderr, "lumen: chat template: %s\n",
                 (*tmpl)->description().c_str());
  }
  auto text = (*tmpl)->Render(*messages, tools, !no_generation_prompt, vars);
  if (!text.ok()) return Fail(std::string(text.status().message()));
  std::fwrite(text->data(), 1, text->size(), stdout);
  return 0;
}

}  // namespace lumen::tools
