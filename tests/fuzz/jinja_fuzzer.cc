// libFuzzer target for the chat-template engine: any template and any
// variables must compile and render or fail with a Status, never crash, hang
// or exhaust memory. Input: template bytes, optionally followed by a NUL
// byte and a JSON object of variables; without one, a chat conversation with
// tools (what real templates expect) is used.
#include <cstddef>
#include <cstdint>
#include <string>

#include "chat/jinja/template.h"

namespace {

const char kDefaultVariables[] = R"({
  "messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What's the weather in Paris? \u4e2d\u6587"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_0001",
      "type": "function", "function": {"name": "get_weather",
      "arguments": {"city": "Paris", "n": [1, 2.5, null, true]}}}]},
    {"role": "tool", "tool_call_id": "call_0001", "name": "get_weather",
     "content": "{\"temperature\": 18}"},
    {"role": "user", "content": [{"type": "text", "text": "part"}]}],
  "tools": [{"type": "function", "function": {"name": "get_weather",
    "description": "Current weather", "parameters": {"type": "object",
    "properties": {"city": {"type": "string", "enum": ["a", "b"]}},
    "required": ["city"]}}}],
  "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using lumen::chat::jinja::Json;
  using lumen::chat::jinja::RenderOptions;
  using lumen::chat::jinja::Template;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string source = input.substr(0, split);
  static const Json* defaults = new Json(Json::parse(kDefaultVariables));
  Json variables = *defaults;
  if (split != std::string::npos) {
    Json parsed = Json::parse(input.substr(split + 1), nullptr,
                              /*allow_exceptions=*/false);
    if (parsed.is_object()) variables = std::move(parsed);
  }
  auto tmpl = Template::Compile(source);
  if (!tmpl.ok()) return 0;
  // Small limits keep every run fast; the limits themselves are what is
  // being exercised.
  RenderOptions options;
  options.limits.max_output_bytes = 1 << 16;
  options.limits.max_loop_iterations = 1 << 14;
  options.limits.max_work = 1 << 22;
  auto text = (*tmpl)->Render(variables, options);
  return text.ok() && text->size() == 0xFFFFFFFF ? 1 : 0;
}
