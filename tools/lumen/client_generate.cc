// `lumen generate` and `lumen chat`.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "tools/lumen/client_common.h"
#include "tools/lumen/commands.h"

namespace lumen::tools {

namespace {

struct SamplingFlags {
  int64_t max_tokens = 128, seed = -1, top_k = 0, logprobs = 0;
  double temperature = 0.8, top_p = 1.0, min_p = 0.0, repetition_penalty = 1.0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  void Register(FlagSet* f) {
    f->Int("max-tokens", &max_tokens, "tokens to generate at most");
    f->Double("temperature", &temperature, "0 = greedy");
    f->Int("seed", &seed, "sampling seed (-1: random)");
    f->Int("top-k", &top_k, "0 = off");
    f->Double("top-p", &top_p, "nucleus sampling, (0, 1]");
    f->Double("min-p", &min_p, "0 = off");
    f->Double("repetition-penalty", &repetition_penalty, "1 = off");
    f->Repeated("stop", &stop, "stop string (repeatable)");
    f->Int("logprobs", &logprobs, "top alternatives per token");
    f->Bool("ignore-eos", &ignore_eos, "keep generating past end-of-sequence");
  }
  void Fill(lumen::v1::SamplingParams* s) const {
    s->set_max_tokens(static_cast<uint32_t>(max_tokens));
    s->set_temperature(static_cast<float>(temperature));
    if (seed >= 0) s->set_seed(static_cast<uint64_t>(seed));
    s->set_top_k(static_cast<uint32_t>(top_k));
    s->set_top_p(static_cast<float>(top_p));
    s->set_min_p(static_cast<float>(min_p));
    s->set_repetition_penalty(static_cast<float>(repetition_penalty));
    for (const std::string& x : stop) s->add_stop(x);
    s->set_logprobs(static_cast<uint32_t>(logprobs));
    s->set_ignore_eos(ignore_eos);
  }
};

// Reads the file `path` that --`flag` names into *text. NotFound or DataLoss
// naming the flag.
absl::Status ReadFlagFile(const char* flag, const std::string& path,
                          std::string* text) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("--", flag, ": cannot read '", path,
                                            "': ", std::strerror(errno)));
  }
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text->append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    return absl::DataLossError(
        absl::StrCat("--", flag, ": error reading '", path, "'"));
  }
  return absl::OkStatus();
}

// The output constraint of `lumen generate` (docs/structured-output.md): at
// most one of the four flags.
struct ConstraintFlags {
  std::string json_schema_file, regex, grammar_file;
  bool json_object = false;
  void Register(FlagSet* f) {
    f->String("json-schema", &json_schema_file,
              "constrain the output to this JSON Schema (a file; the "
              "supported subset is in docs/structured-output.md)");
    f->Bool("json-object", &json_object,
            "constrain the output to one JSON object");
    f->String("regex", &regex,
              "constrain the output to text this regular expression "
              "matches as a whole");
    f->String("grammar", &grammar_file,
              "constrain the output to this GBNF grammar (a file in "
              "llama.cpp's format, start rule root)");
  }
  // Sets `s`'s constraint. InvalidArgument when more than one constraint is
  // given, NotFound when a file cannot be read.
  absl::Status Fill(lumen::v1::SamplingParams* s) const {
    const int given = !json_schema_file.empty() + json_object + !regex.empty() +
                      !grammar_file.empty();
    if (given > 1) {
      return absl::InvalidArgumentError(
          "give at most one of --json-schema, --json-object, --regex and "
          "--grammar");
    }
    if (!json_schema_file.empty()) {
      std::string text;
      if (absl::Status st =
              ReadFlagFile("json-schema", json_schema_file, &text);
          !st.ok())
        return st;
      s->set_json_schema(std::move(text));
    } else if (!grammar_file.empty()) {
      std::string text;
      if (absl::Status st = ReadFlagFile("grammar", grammar_file, &text);
          !st.ok())
        return st;
      s->set_grammar(std::move(text));
    } else if (!regex.empty()) {
      s->set_regex(regex);
    } else if (json_object) {
      s->set_json_object(true);
    }
    return absl::OkStatus();
  }
};

// Tool calling in `lumen chat` (docs/grpc.md): the tools file and the
// choice, as the request's OpenAI-shaped JSON text.
struct ToolFlags {
  std::string tools_file, tool_choice;
  bool no_parallel = false;
  void Register(FlagSet* f) {
    f->String("tools", &tools_file,
              "offer these tools: a file holding an OpenAI-style JSON list "
              "[{\"type\": \"function\", \"function\": {\"name\", "
              "\"description\", \"parameters\"}}]");
    f->String("tool-choice", &tool_choice,
              "auto (the default), none, required, or a tool's name (that "
              "function must be called); with --tools");
    f->Bool("no-parallel-tool-calls", &no_parallel,
            "at most one call per turn");
  }
  bool active() const { return !tools_file.empty(); }
  // Sets the request's tool fields. InvalidArgument for --tool-choice
  // without --tools, NotFound when the file cannot be read (the server
  // validates the tools themselves).
  absl::Status Fill(lumen::v1::GenerateRequest* req) const {
    if (tools_file.empty()) {
      if (!tool_choice.empty() || no_parallel) {
        return absl::InvalidArgumentError(
            "--tool-choice and --no-parallel-tool-calls need --tools");
      }
      return absl::OkStatus();
    }
    std::string text;
    if (absl::Status st = ReadFlagFile("tools", tools_file, &text); !st.ok())
      return st;
    req->set_tools_json(std::move(text));
    req->set_tool_choice_json(ChoiceJson(tool_choice));
    if (no_parallel) req->set_parallel_tool_calls(false);
    return absl::OkStatus();
  }
  // "auto", "none", "required" as JSON strings; anything else names the
  // function.
  static std::string ChoiceJson(const std::string& choice) {
    if (choice.empty()) return "";
    if (choice == "auto" || choice == "none" || choice == "required") {
      return absl::StrCat("\"", choice, "\"");
    }
    return absl::StrCat(R"({"type": "function", "function": {"name": )",
                        JsonString(choice), "}}");
  }
  static std::string JsonString(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        out += absl::StrFormat("\\u%04x", c);
      } else {
        out += static_cast<char>(c);
      }
    }
    return out + "\"";
  }
};

// The line `lumen chat` prints for a call the model made (on a line of its
// own; the caller ends it):
//   tool call get_weather (id call_...) {"city":"Paris"}
// A call's first piece starts its line (name and id); later pieces append
// to its arguments as they stream.
void PrintToolCallPiece(const lumen::v1::ToolCall& call, bool at_line_start) {
  if (!call.name().empty()) {
    std::printf("%stool call %s (id %s) ", at_line_start ? "" : "\n",
                call.name().c_str(), call.id().c_str());
  }
  std::fwrite(call.arguments_json().data(), 1, call.arguments_json().size(),
              stdout);
  std::fflush(stdout);
}

void PrintTimings(const lumen::v1::GenerateStreamResponse& last) {
  const auto& t = last.timings();
  const auto& u = last.usage();
  std::fprintf(
      stderr,
      "\n[%s] prompt %u tokens (%u cached), completion %u tokens; TTFT %.1f "
      "ms, "
      "%.1f ms/token, total %.1f ms\n",
      last.finish_reason().c_str(), u.prompt_tokens(), u.cached_prompt_tokens(),
      u.completion_tokens(), 1e3 * t.time_to_first_token_seconds(),
      1e3 * t.time_per_output_token_seconds(), 1e3 * t.total_seconds());
}

// Streams one request, printing text and tool calls as they arrive;
// returns the exit code, the full text in *text and the calls in *calls
// (when not null).
int Stream(const ClientFlags& client, const lumen::v1::GenerateRequest& req,
           std::string* text, bool quiet_timings = false,
           std::vector<lumen::v1::ToolCall>* calls = nullptr) {
  auto stub = lumen::v1::Inference::NewStub(client.Channel());
  auto ctx = client.Context();
  auto reader = stub->GenerateStream(ctx.get(), req);
  lumen::v1::GenerateStreamResponse msg, last;
  bool at_line_start = true, after_call = false;
  while (reader->Read(&msg)) {
    // Text after a call starts on a line of its own.
    if (after_call && !msg.text().empty()) std::fputc('\n', stdout);
    if (!msg.text().empty()) after_call = false;
    std::fwrite(msg.text().data(), 1, msg.text().size(), stdout);
    std::fflush(stdout);
    *text += msg.text();
    if (!msg.text().empty()) at_line_start = msg.text().back() == '\n';
    for (const lumen::v1::ToolCall& call : msg.tool_calls()) {
      PrintToolCallPiece(call, at_line_start);
      at_line_start = false;
      after_call = true;
      if (calls == nullptr) continue;
      if (!call.name().empty()) {
        calls->push_back(call);
      } else {
        for (lumen::v1::ToolCall& c : *calls) {
          if (c.index() == call.index())
            c.mutable_arguments_json()->append(call.arguments_json());
        }
      }
    }
    if (!msg.finish_reason().empty()) last = msg;
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return FailRpc(st);
  if (calls != nullptr && !calls->empty() &&
      last.finish_reason() != "tool_calls") {
    // A call cut by max_tokens (or whose JSON broke) has no arguments to
    // run, and the server would refuse them in the next turn.
    std::fprintf(stderr, "\n[unfinished tool call (%s): not run]\n",
                 last.finish_reason().c_str());
    calls->clear();
  }
  // Citations after the answer (traceability of RAG answers).
  for (int i = 0; i < last.citations_size(); ++i) {
    const auto& c = last.citations(i);
    std::printf("%s[%d] %s/%s (chunk %lld, score %.4f) %s",
                i == 0 ? "\n\nSources:\n" : "\n", i + 1, c.collection().c_str(),
                c.document_id().c_str(), (long long)c.chunk_id(), c.score(),
                c.source().c_str());
  }
  if (!quiet_timings) PrintTimings(last);
  return 0;
}

}  // namespace

int ClientGenerate(const Args& args) {
  ClientFlags client;
  SamplingFlags sampling;
  ConstraintFlags constraint;
  std::string model, prompt, adapter, rag;
  bool json = false, ids = false;
  FlagSet flags(
      "lumen generate [--model NAME] --prompt TEXT [--max-tokens N] "
      "[--temperature T] [--seed S]\n"
      "                      [--json-schema FILE | --json-object | --regex RE "
      "| --grammar FILE] [--json]");
  client.Register(&flags);
  sampling.Register(&flags);
  constraint.Register(&flags);
  flags.String("model", &model, "model name (empty: the server's first)");
  flags.String("prompt", &prompt, "prompt text (empty: start from BOS)");
  flags.String("adapter", &adapter, "LoRA adapter name");
  flags.String("rag", &rag, "knowledge collection to ground the answer in");
  flags.Bool("json", &json, "print the whole response message as JSON");
  flags.Bool("ids", &ids, "also return token ids (with --json)");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;

  lumen::v1::GenerateRequest req;
  sampling.Fill(req.mutable_sampling());
  // Before any RPC: a usage error or an unreadable file ends here.
  if (absl::Status s = constraint.Fill(req.mutable_sampling()); !s.ok()) {
    return Fail(std::string(s.message()), absl::IsInvalidArgument(s) ? 2 : 1);
  }
  req.set_model(model);
  req.set_prompt(prompt);
  if (prompt.empty()) {
    // No prompt: generate from the model's BOS token alone, which the server
    // reports as the encoding of "" with special tokens.
    lumen::v1::TokenizeRequest tr;
    tr.set_model(model);
    tr.set_add_special(true);
    lumen::v1::TokenizeResponse bos;
    auto ctx = client.Context();
    grpc::Status st = lumen::v1::Inference::NewStub(client.Channel())
                          ->Tokenize(ctx.get(), tr, &bos);
    if (!st.ok()) return FailRpc(st);
    for (int32_t id : bos.token_ids()) req.add_prompt_token_ids(id);
  }
  req.set_adapter(adapter);
  req.set_return_token_ids(ids || json);
  if (!rag.empty()) req.mutable_rag()->add_collections(rag);
  if (!json) {
    std::string text;
    const int rc = Stream(client, req, &text);
    if (rc == 0) std::printf("\n");
    return rc;
  }
  auto stub = lumen::v1::Inference::NewStub(client.Channel());
  auto ctx = client.Context();
  lumen::v1::GenerateResponse resp;
  grpc::Status st = stub->Generate(ctx.get(), req, &resp);
  if (!st.ok()) return FailRpc(st);
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(resp, &out, opts);
  std::printf("%s\n", out.c_str());
  return 0;
}

// The assistant turn that made `calls`, as ChatMessage.tool_calls_json.
std::string ToolCallsJson(const std::vector<lumen::v1::ToolCall>& calls) {
  std::string out = "[";
  for (size_t i = 0; i < calls.size(); ++i) {
    absl::StrAppend(
        &out, i ? ", " : "", R"({"id": )", ToolFlags::JsonString(calls[i].id()),
        R"(, "type": "function", "function": {"name": )",
        ToolFlags::JsonString(calls[i].name()), R"(, "arguments": )",
        ToolFlags::JsonString(calls[i].arguments_json()), "}}");
  }
  return out + "]";
}

int ClientChat(const Args& args) {
  ClientFlags client;
  SamplingFlags sampling;
  ToolFlags tools;
  std::string model, system;
  FlagSet flags(
      "lumen chat [--model NAME] [--system TEXT] [--tools FILE "
      "[--tool-choice auto|none|required|NAME]]\n"
      "                      (reads your turns from stdin; after a tool call, "
      "one line per call: its result)");
  client.Register(&flags);
  sampling.Register(&flags);
  tools.Register(&flags);
  flags.String("model", &model, "model name");
  flags.String("system", &system, "system prompt");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  lumen::v1::GenerateRequest req;
  req.set_model(model);
  sampling.Fill(req.mutable_sampling());
  if (absl::Status s = tools.Fill(&req); !s.ok()) {
    return Fail(std::string(s.message()), absl::IsInvalidArgument(s) ? 2 : 1);
  }
  const std::string user_choice = req.tool_choice_json();
  if (!system.empty()) {
    auto* m = req.add_messages();
    m->set_role("system");
    m->set_content(system);
  }
  std::string line;
  while (true) {
    std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    auto* m = req.add_messages();
    m->set_role("user");
    m->set_content(line);
    req.set_tool_choice_json(user_choice);
    // One user turn: the model answers, or calls tools whose results (one
    // line each from stdin) go back to it until it answers in text.
    while (true) {
      std::string answer;
      std::vector<lumen::v1::ToolCall> calls;
      if (int rc = Stream(client, req, &answer, /*quiet_timings=*/true, &calls);
          rc != 0)
        return rc;
      std::printf("\n");
      std::fflush(stdout);
      auto* a = req.add_messages();
      a->set_role("assistant");
      a->set_content(answer);
      if (calls.empty()) break;
      a->set_tool_calls_json(ToolCallsJson(calls));
      for (const lumen::v1::ToolCall& call : calls) {
        std::fprintf(stderr, "result of %s (%s)> ", call.name().c_str(),
                     call.id().c_str());
        if (!std::getline(std::cin, line)) return 0;
        auto* result = req.add_messages();
        result->set_role("tool");
        result->set_tool_call_id(call.id());
        result->set_content(line);
      }
      // As agent frameworks do after a tool result (the OpenAI Agents SDK's
      // reset_tool_choice): the answer is the model's choice, so a required
      // call cannot loop forever.
      req.set_tool_choice_json(user_choice.empty() ? "" : "\"auto\"");
    }
  }
  return 0;
}

}  // namespace lumen::tools
