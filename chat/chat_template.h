#pragma once
// ChatTemplate: how one model turns chat messages into its prompt, chosen
// once per model by the --chat-template rule and compiled once:
//   "auto"        the model file's own Jinja template (tokenizer.chat_template,
//                 and tokenizer.chat_template.tool_use for requests with
//                 tools); the family table only when the file has none;
//   a family      "chatml", "llama3", ... (chat_family.h), rendered natively;
//   a file name   of the model ("tool_use" ->
//   tokenizer.chat_template.tool_use); a path        to a .jinja file (read
//   once, at Create).
// Rendering matches Python's jinja2 as Hugging Face transformers sets it up.
// Create on any thread; Render is const and thread-safe.

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "chat/chat_family.h"
#include "chat/chat_messages.h"
#include "chat/jinja/options.h"
#include "chat/jinja/template.h"

namespace lumen::chat {

// The chat-template data of a model file (see gguf_templates.h).
struct ModelTemplates {
  std::string chat_template;  // tokenizer.chat_template; empty when absent
  // tokenizer.chat_template.NAME -> template, e.g. {"tool_use", ...}.
  std::vector<std::pair<std::string, std::string>> named_templates;
  std::string bos_token;  // token texts, passed to the template as
  std::string eos_token;  // bos_token / eos_token
  // Texts of the control tokens: which family to use when the file has no
  // template ("<|im_start|>" -> chatml).
  std::vector<std::string> special_tokens;
};

struct ChatTemplateOptions {
  jinja::Limits limits;
  jinja::CompileOptions compile;
  std::optional<absl::Time> fixed_now;  // what strftime_now() sees; tests
  absl::TimeZone time_zone = absl::LocalTimeZone();
};

class ChatTemplate {
 public:
  enum class Kind { kModelFile, kJinjaFile, kFamily };

  // What the template does with the shapes messages can take, found by
  // rendering probe conversations at Create.
  struct Capabilities {
    bool system_role = false;    // renders a system message (no error)
    bool tools = false;          // prints the offered tools
    bool tool_calls = false;     // prints an assistant's tool calls
    bool typed_content = false;  // renders content given as text parts
    bool null_content = false;   // accepts null content
  };

  // Chooses and compiles the template for `model` by `choice` (above).
  // InvalidArgument for an unknown choice or a template that does not
  // compile (with its line and column); NotFound for a missing file.
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> Create(
      const ModelTemplates& model, absl::string_view choice = "auto",
      const ChatTemplateOptions& options = {});

  // The prompt for `messages` (OpenAI-style, see chat_messages.h), offering
  // `tools` (a list of function tools; null or [] for none), ending with the
  // assistant's generation prompt if asked. `extra_variables` (an object)
  // adds template variables such as enable_thinking or reasoning_effort and
  // may override bos_token/eos_token. InvalidArgument naming the field for
  // malformed input; a template's raise_exception(msg) is InvalidArgument
  // with exactly msg (jinja::IsRaisedError).
  absl::StatusOr<std::string> Render(
      const Json& messages, const Json& tools, bool add_generation_prompt,
      const Json& extra_variables = Json::object()) const;

  Kind kind() const { return kind_; }
  // Which template this is, for `lumen model inspect` and logs:
  // "tokenizer.chat_template", "family chatml (...)", "file x.jinja".
  const std::string& description() const { return description_; }
  // The Jinja source (empty for a family): tool-call formats are decided
  // from it.
  const std::string& source() const { return source_; }
  std::optional<ChatFamily> family() const { return family_; }
  const Capabilities& capabilities() const { return capabilities_; }
  // True when requests with tools use tokenizer.chat_template.tool_use.
  bool has_tool_use_template() const { return tool_use_ != nullptr; }

 private:
  ChatTemplate() = default;
  absl::Status CompileJinja(const std::string& source,
                            const std::string& tool_use_source);
  void UseFamily(ChatFamily family, std::string description);
  void ProbeCapabilities();
  absl::StatusOr<std::string> RenderJinja(const jinja::Template& tmpl,
                                          const Json& messages,
                                          const Json& tools,
                                          bool add_generation_prompt,
                                          const Json& extra_variables) const;
  absl::StatusOr<std::string> RenderFamily(const Json& messages,
                                           const Json& tools,
                                           bool add_generation_prompt) const;
  jinja::RenderOptions RenderOptionsNow() const;

  Kind kind_ = Kind::kFamily;
  std::string description_;
  std::string source_;
  std::optional<ChatFamily> family_;
  std::string family_text_;  // the model's template, refining a family
  std::unique_ptr<jinja::Template> template_;  // null for a family
  std::unique_ptr<jinja::Template> tool_use_;  // may be null
  std::string bos_token_, eos_token_;
  ChatTemplateOptions options_;
  MessageFormat format_;
  Capabilities capabilities_;
};

}  // namespace lumen::chat
