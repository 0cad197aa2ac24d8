#include "chat/chat_template.h"

#include <fstream>
#include <sstream>

#include "absl/memory/memory.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace lumen::chat {

namespace {

constexpr char kToolUseName[] = "tool_use";

const std::string* FindNamed(const ModelTemplates& model,
                             absl::string_view name) {
  for (const auto& [n, text] : model.named_templates)
    if (n == name) return &text;
  return nullptr;
}

bool LooksLikePath(absl::string_view choice) {
  return absl::EndsWith(choice, ".jinja") || absl::StrContains(choice, '/');
}

absl::StatusOr<std::string> ReadTemplateFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read chat template file '", path, "'"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Probe inputs: a marker that no template prints by itself.
constexpr char kMarker[] = "lumen-probe-7f3a";
constexpr char kProbeTool[] = "lumen_probe_tool";
constexpr char kProbeCall[] = "lumen_probe_call";

Json ProbeTools() {
  return Json::parse(absl::StrCat(
      R"([{"type": "function", "function": {"name": ")", kProbeTool,
      R"(", "description": "probe", "parameters": {"type": "object",
      "properties": {"x": {"type": "string", "description": "x"}},
      "required": ["x"]}}}])"));
}

Json ProbeToolCall(const Json& content) {
  Json messages = Json::parse(absl::StrCat(
      R"([{"role": "user", "content": "hi"},
          {"role": "assistant", "tool_calls": [{"id": "call12345",
           "type": "function", "function": {"name": ")",
      kProbeCall, R"(", "arguments": {"x": "y"}}}]},
          {"role": "tool", "tool_call_id": "call12345", "name": ")",
      kProbeCall, R"(", "content": "ok"}])"));
  messages[1]["content"] = content;
  return messages;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::Create(
    const ModelTemplates& model, absl::string_view choice,
    const ChatTemplateOptions& options) {
  auto t = absl::WrapUnique(new ChatTemplate());
  t->options_ = options;
  t->bos_token_ = model.bos_token;
  t->eos_token_ = model.eos_token;
  if (choice.empty()) choice = "auto";
  if (choice == "auto") {
    if (!model.chat_template.empty()) {
      const std::string* tool_use = FindNamed(model, kToolUseName);
      const absl::Status compiled =
          t->CompileJinja(model.chat_template, tool_use ? *tool_use : "");
      if (compiled.ok()) {
        t->kind_ = Kind::kModelFile;
        t->description_ =
            tool_use == nullptr
                ? "tokenizer.chat_template"
                : "tokenizer.chat_template (tokenizer.chat_template.tool_use "
                  "for requests with tools)";
      } else {
        // A template beyond the engine's dialect: the family table may
        // still know its format.
        absl::StatusOr<ChatFamily> family =
            DetectChatFamily(model.chat_template);
        if (!family.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "the model's chat template does not compile (",
              compiled.message(),
              "); choose one with --chat-template FAMILY or PATH.jinja"));
        }
        t->UseFamily(*family,
                     absl::StrCat("family ", ChatFamilyName(*family),
                                  " (the model's template does not compile: ",
                                  compiled.message(), ")"));
        t->family_text_ = model.chat_template;
      }
    } else {
      absl::StatusOr<ChatFamily> family =
          DetectChatFamily(absl::StrJoin(model.special_tokens, " "));
      if (family.ok()) {
        t->UseFamily(*family,
                     absl::StrCat("family ", ChatFamilyName(*family),
                                  " (the file has no template; detected from "
                                  "its special tokens)"));
      } else {
        t->UseFamily(ChatFamily::kChatML,
                     "family chatml (the file has no template; llama.cpp's "
                     "default)");
      }
    }
  } else if (LooksLikePath(choice)) {
    ASSIGN_OR_RETURN(std::string text, ReadTemplateFile(std::string(choice)));
    const absl::Status compiled = t->CompileJinja(text, "");
    if (!compiled.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("chat template ", choice, ": ", compiled.message()));
    }
    t->kind_ = Kind::kJinjaFile;
    t->description_ = absl::StrCat("file ", choice);
  } else if (const std::string* named = FindNamed(model, choice)) {
    const absl::Status compiled = t->CompileJinja(*named, "");
    if (!compiled.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer.chat_template.", choice, ": ", compiled.message()));
    }
    t->kind_ = Kind::kModelFile;
    t->description_ = absl::StrCat("tokenizer.chat_template.", choice);
  } else if (absl::StatusOr<ChatFamily> family = ChatFamilyFromName(choice);
             family.ok()) {
    t->UseFamily(*family,
                 absl::StrCat("family ", choice, " (--chat-template)"));
    t->family_text_ = model.chat_template;
  } else {
    std::string names;
    for (const auto& [name, text] : model.named_templates)
      absl::StrAppend(&names, ", ", name);
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown chat template '", choice,
        "': use auto, a family (chatml, llama2, llama3, mistral, gemma, phi3, "
        "zephyr)",
        names.empty() ? ""
                      : ", a template of the file (" + names.substr(2) + ")",
        " or a path to a .jinja file"));
  }
  t->ProbeCapabilities();
  return t;
}

absl::Status ChatTemplate::CompileJinja(const std::string& source,
                                        const std::string& tool_use_source) {
  ASSIGN_OR_RETURN(template_,
                   jinja::Template::Compile(source, options_.compile));
  if (!tool_use_source.empty()) {
    absl::StatusOr<std::unique_ptr<jinja::Template>> tool_use =
        jinja::Template::Compile(tool_use_source, options_.compile);
    if (!tool_use.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer.chat_template.tool_use: ", tool_use.status().message()));
    }
    tool_use_ = std::move(*tool_use);
  }
  source_ = source;
  family_.reset();
  return absl::OkStatus();
}

void ChatTemplate::UseFamily(ChatFamily family, std::string description) {
  kind_ = Kind::kFamily;
  family_ = family;
  description_ = std::move(description);
  template_.reset();
  tool_use_.reset();
  source_.clear();
}

jinja::RenderOptions ChatTemplate::RenderOptionsNow() const {
  jinja::RenderOptions o;
  o.limits = options_.limits;
  o.now = options_.fixed_now.value_or(absl::Now());
  o.time_zone = options_.time_zone;
  return o;
}

void ChatTemplate::ProbeCapabilities() {
  if (kind_ == Kind::kFamily) {
    // The family table folds system prompts where needed; it renders no
    // tools; text parts are joined before it sees them.
    capabilities_ = Capabilities{.system_role = true};
    format_ = MessageFormat{.typed_content = false, .null_content = false};
    return;
  }
  const jinja::RenderOptions o = RenderOptionsNow();
  auto render = [&](const jinja::Template& tmpl, Json messages,
                    const Json& tools) {
    Json vars = Json::object();
    vars["messages"] = std::move(messages);
    if (!tools.is_null()) vars["tools"] = tools;
    vars["add_generation_prompt"] = true;
    vars["bos_token"] = bos_token_;
    vars["eos_token"] = eos_token_;
    return tmpl.Render(vars, o);
  };
  auto prints = [](const absl::StatusOr<std::string>& r, absl::string_view s) {
    return r.ok() && absl::StrContains(*r, s);
  };
  Capabilities& c = capabilities_;
  c.system_role =
      prints(render(*template_,
                    Json::parse(absl::StrCat(
                        R"([{"role": "system", "content": ")", kMarker,
                        R"("}, {"role": "user", "content": "hi"}])")),
                    nullptr),
             kMarker);
  // Printing the list itself (its Python repr) is not rendering its parts.
  const absl::StatusOr<std::string> typed =
      render(*template_,
             Json::parse(absl::StrCat(
                 R"([{"role": "user", "content": [{"type": "text", "text": ")",
                 kMarker, R"("}]}])")),
             nullptr);
  c.typed_content = prints(typed, kMarker) && !prints(typed, "'text'");
  const jinja::Template& with_tools = tool_use_ ? *tool_use_ : *template_;
  const Json tools = ProbeTools();
  c.tools = prints(render(with_tools, Json::parse(R"([{"role": "user",
      "content": "hi"}])"),
                          tools),
                   kProbeTool);
  const absl::StatusOr<std::string> empty_content =
      render(with_tools, ProbeToolCall(""), tools);
  c.tool_calls = prints(empty_content, kProbeCall);
  // Null content counts as unsupported only when it alone breaks the
  // template (llama.cpp's requires_non_null_content).
  c.null_content = render(with_tools, ProbeToolCall(nullptr), tools).ok() ||
                   !empty_content.ok();
  format_ = MessageFormat{.typed_content = c.typed_content,
                          .null_content = c.null_content};
}

absl::StatusOr<std::string> ChatTemplate::Render(
    const Json& messages, const Json& tools, bool add_generation_prompt,
    const Json& extra_variables) const {
  if (!tools.is_null() && !tools.is_array()) {
    return absl::InvalidArgumentError("tools must be a list");
  }
  if (!extra_variables.is_null() && !extra_variables.is_object()) {
    return absl::InvalidArgumentError(
        "extra template variables must be an object");
  }
  if (kind_ == Kind::kFamily) {
    return RenderFamily(messages, tools, add_generation_prompt);
  }
  const bool with_tools = tools.is_array() && !tools.empty();
  return RenderJinja(with_tools && tool_use_ ? *tool_use_ : *template_,
                     messages, tools, add_generation_prompt, extra_variables);
}

absl::StatusOr<std::string> ChatTemplate::RenderJinja(
    const jinja::Template& tmpl, const Json& messages, const Json& tools,
    bool add_generation_prompt, const Json& extra_variables) const {
  ASSIGN_OR_RETURN(const Json normalized, NormalizeMessages(messages, format_));
  const Json generation_prompt(add_generation_prompt);
  const Json bos(bos_token_);
  const Json eos(eos_token_);
  // Bound by reference: the caller's tools and variables are not copied.
  std::vector<std::pair<absl::string_view, const Json*>> vars = {
      {"messages", &normalized},
      {"add_generation_prompt", &generation_prompt},
      {"bos_token", &bos},
      {"eos_token", &eos}};
  // As transformers: `tools` only when there are some.
  if (tools.is_array() && !tools.empty()) vars.emplace_back("tools", &tools);
  if (extra_variables.is_object()) {
    for (auto it = extra_variables.begin(); it != extra_variables.end(); ++it) {
      if (it.key() == "messages" || it.key() == "tools" ||
          it.key() == "add_generation_prompt") {
        return absl::InvalidArgumentError(
            absl::StrCat("template variable '", it.key(),
                         "' cannot be set as an extra variable"));
      }
      vars.emplace_back(it.key(), &it.value());  // later bindings win
    }
  }
  return tmpl.Render(vars, RenderOptionsNow());
}

absl::StatusOr<std::string> ChatTemplate::RenderFamily(
    const Json& messages, const Json& tools, bool add_generation_prompt) const {
  const absl::string_view name = ChatFamilyName(*family_);
  if (tools.is_array() && !tools.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", name,
        " family template cannot offer tools; use a model whose file carries "
        "its chat template, or --chat-template PATH.jinja"));
  }
  ASSIGN_OR_RETURN(Json normalized, NormalizeMessages(messages, format_));
  std::vector<ChatTurn> turns;
  for (size_t i = 0; i < normalized.size(); ++i) {
    const Json& m = normalized[i];
    if (m.contains("tool_calls")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "messages[", i, "].tool_calls cannot be rendered by the ", name,
          " family template"));
    }
    turns.push_back(ChatTurn{m["role"].get<std::string>(),
                             m["content"].get<std::string>()});
  }
  return RenderChat(*family_, family_text_, turns, add_generation_prompt);
}

}  // namespace lumen::chat
