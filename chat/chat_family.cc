#include "chat/chat_family.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lumen::chat {

absl::string_view ChatFamilyName(ChatFamily f) {
  switch (f) {
    case ChatFamily::kChatML:
      return "chatml";
    case ChatFamily::kLlama2:
      return "llama2";
    case ChatFamily::kLlama3:
      return "llama3";
    case ChatFamily::kMistral:
      return "mistral";
    case ChatFamily::kGemma:
      return "gemma";
    case ChatFamily::kPhi3:
      return "phi3";
    case ChatFamily::kZephyr:
      return "zephyr";
  }
  return "?";
}

absl::StatusOr<ChatFamily> ChatFamilyFromName(absl::string_view name) {
  for (ChatFamily f :
       {ChatFamily::kChatML, ChatFamily::kLlama2, ChatFamily::kLlama3,
        ChatFamily::kMistral, ChatFamily::kGemma, ChatFamily::kPhi3,
        ChatFamily::kZephyr}) {
    if (ChatFamilyName(f) == name) return f;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown chat template family '", name,
                   "' (chatml, llama2, llama3, mistral, gemma, phi3, zephyr)"));
}

absl::StatusOr<ChatFamily> DetectChatFamily(absl::string_view t) {
  if (absl::StrContains(t, "<|im_start|>")) return ChatFamily::kChatML;
  if (absl::StrContains(t, "<|start_header_id|>")) return ChatFamily::kLlama3;
  if (absl::StrContains(t, "<start_of_turn>")) return ChatFamily::kGemma;
  if (absl::StrContains(t, "<|assistant|>") &&
      absl::StrContains(t, "<|end|>")) {
    return ChatFamily::kPhi3;
  }
  if (absl::StrContains(t, "<|assistant|>") &&
      absl::StrContains(t, "<|user|>")) {
    return ChatFamily::kZephyr;
  }
  if (absl::StrContains(t, "[INST]")) {
    return absl::StrContains(t, "<<SYS>>") ? ChatFamily::kLlama2
                                           : ChatFamily::kMistral;
  }
  std::string start(t.substr(0, 60));
  return absl::InvalidArgumentError(
      absl::StrCat("unrecognized chat template (starts with \"", start,
                   "\"); supported families: chatml, llama2, llama3, mistral, "
                   "gemma, phi3, zephyr; "
                   "lumend --chat-template NAME forces one"));
}

namespace {

absl::Status CheckRoles(const std::vector<ChatTurn>& turns) {
  if (turns.empty()) return absl::InvalidArgumentError("messages is empty");
  for (size_t i = 0; i < turns.size(); ++i) {
    const std::string& r = turns[i].role;
    if (r != "system" && r != "user" && r != "assistant") {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "].role '", r,
                       "' is not one of system, user, assistant"));
    }
  }
  return absl::OkStatus();
}

// Splits a leading system message off (families without a system role fold
// it into the first user message).
std::pair<std::string, std::vector<ChatTurn>> SplitSystem(
    const std::vector<ChatTurn>& turns) {
  if (!turns.empty() && turns[0].role == "system") {
    return {turns[0].content,
            std::vector<ChatTurn>(turns.begin() + 1, turns.end())};
  }
  return {"", turns};
}

}  // namespace

absl::StatusOr<std::string> RenderChat(ChatFamily family,
                                       absl::string_view template_text,
                                       const std::vector<ChatTurn>& turns,
                                       bool add_generation_prompt) {
  if (absl::Status s = CheckRoles(turns); !s.ok()) return s;
  std::string out;
  switch (family) {
    case ChatFamily::kChatML: {
      if (turns[0].role != "system" &&
          absl::StrContains(template_text, "You are a helpful assistant")) {
        out +=
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";  // Qwen
      }
      for (const ChatTurn& m : turns) {
        absl::StrAppend(&out, "<|im_start|>", m.role, "\n", m.content,
                        "<|im_end|>\n");
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    }
    case ChatFamily::kLlama3: {
      out = "<|begin_of_text|>";
      for (const ChatTurn& m : turns) {
        absl::StrAppend(&out, "<|start_header_id|>", m.role,
                        "<|end_header_id|>\n\n",
                        absl::StripAsciiWhitespace(m.content), "<|eot_id|>");
      }
      if (add_generation_prompt)
        out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    }
    case ChatFamily::kLlama2:
    case ChatFamily::kMistral: {
      auto [system, rest] = SplitSystem(turns);
      bool first_user = true;
      for (const ChatTurn& m : rest) {
        if (m.role == "user") {
          std::string content = m.content;
          if (first_user && !system.empty()) {
            content = family == ChatFamily::kLlama2
                          ? absl::StrCat("<<SYS>>\n", system, "\n<</SYS>>\n\n",
                                         content)
                          : absl::StrCat(system, "\n\n", content);
          }
          first_user = false;
          absl::StrAppend(&out, "<s>[INST] ", content, " [/INST]");
        } else if (m.role == "assistant") {
          absl::StrAppend(&out, family == ChatFamily::kLlama2 ? " " : "",
                          m.content, "</s>");
        } else {
          return absl::InvalidArgumentError(
              "a system message is only allowed first for this chat template");
        }
      }
      if (family == ChatFamily::kMistral) {
        // Mistral's template opens with one BOS only.
        std::string fixed = "<s>";
        size_t pos = 0;
        while ((pos = out.find("<s>", pos)) != std::string::npos) {
          out.erase(pos, 3);
        }
        out = fixed + out;
      }
      return out;
    }
    case ChatFamily::kGemma: {
      auto [system, rest] = SplitSystem(turns);
      out = "<bos>";
      bool first = true;
      for (const ChatTurn& m : rest) {
        std::string content = m.content;
        if (first && !system.empty())
          content = absl::StrCat(system, "\n\n", content);
        first = false;
        absl::StrAppend(&out, "<start_of_turn>",
                        m.role == "assistant" ? "model" : m.role, "\n",
                        absl::StripAsciiWhitespace(content), "<end_of_turn>\n");
      }
      if (add_generation_prompt) out += "<start_of_turn>model\n";
      return out;
    }
    case ChatFamily::kPhi3: {
      for (const ChatTurn& m : turns) {
        absl::StrAppend(&out, "<|", m.role, "|>\n", m.content, "<|end|>\n");
      }
      if (add_generation_prompt) out += "<|assistant|>\n";
      return out;
    }
    case ChatFamily::kZephyr: {
      for (const ChatTurn& m : turns) {
        absl::StrAppend(&out, "<|", m.role, "|>\n", m.content, "</s>\n");
      }
      if (add_generation_prompt) out += "<|assistant|>\n";
      return out;
    }
  }
  return absl::InternalError("unreachable");
}

}  // namespace lumen::chat
