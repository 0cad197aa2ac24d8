// libFuzzer target for gRPC requests as lumend prepares them, on
// stories260K's tokenizer with real chat templates and no engine:
//   GenerateRequest: ValidateGenerateRequest, RagQueryOf, BuildGenerateParams
//     (with made-up passages for RAG requests) and the ConstraintCache for
//     json_schema / json_object / regex / grammar and tool-call grammars
//     (lazy ones included), then a fake engine: the engine's admission
//     checks and a few decode steps of the real sampler and constraint
//     state on made-up logits, with the request's sampling parameters;
//   TokenizeRequest and DetokenizeRequest: the tokenizer calls and range
//     check their handlers make.
// Nothing may crash, hang or leak, every refusal is an InvalidArgument with a
// message, and what is accepted is usable (token ids inside the vocabulary,
// text valid UTF-8). The fuzzer's input is one byte (request kind, chat
// template, context size) followed by the request's protobuf bytes; bytes
// that do not parse are what gRPC refuses before any handler
// (parse_checked_service.h), so they end the run.
//
// Structure-aware (Debian has no libprotobuf-mutator): the custom mutator
// parses the input, changes the message through protobuf reflection (sets or
// clears fields, edge numbers, strings from a dictionary or random bytes
// including invalid UTF-8, grown repeated fields, nested messages) and
// serializes it again; one mutation in eight is libFuzzer's own on the raw
// bytes.
//
// Seeds are readable text protos (tests/fuzz/request_seeds/KIND_*.textproto);
//   LUMEN_WRITE_SEEDS=DIR request_fuzzer
// writes them to DIR in the fuzzer's input format and exits.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/unicode.h"
#include "chat/chat_template.h"
#include "engine/constrained/constraint_cache.h"
#include "engine/gguf/gguf_file.h"
#include "engine/sampler.h"
#include "engine/tokenizer/tokenizer.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/text_format.h"
#include "lumen/v1/inference.pb.h"
#include "server/request_builder.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace lumen::server {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

enum Kind { kGenerate = 0, kTokenize = 1, kDetokenize = 2, kKinds = 3 };

// A broken promise of the request path: print and abort (libFuzzer saves
// the input).
[[noreturn]] void Fail(const std::string& what, const Message& request) {
  std::fprintf(stderr, "request_fuzzer: %s\nrequest: %s\n", what.c_str(),
               request.ShortDebugString().c_str());
  std::abort();
}

// Refusals of bad input are InvalidArgument with a message.
void CheckRefusal(const absl::Status& s, const char* step,
                  const Message& request) {
  if (s.ok()) return;
  if (s.message().empty() || s.code() != absl::StatusCode::kInvalidArgument) {
    Fail(std::string(step) + " refused with " + s.ToString(), request);
  }
}

// What the real server has at hand: the model's tokenizer, chat templates
// and a constraint cache.
struct Env {
  std::unique_ptr<engine::GgufFile> file;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::vector<std::unique_ptr<chat::ChatTemplate>> templates;
  std::unique_ptr<engine::constrained::ConstraintCache> constraints;
};

Env* LoadEnv() {
  auto* env = new Env;
  const std::string data = LUMEN_TESTDATA;
  auto file = engine::GgufFile::Open(data + "/models/stories260K.gguf");
  if (!file.ok()) {
    std::fprintf(stderr, "request_fuzzer: %s\n",
                 file.status().ToString().c_str());
    std::exit(2);
  }
  env->file = std::move(*file);
  auto tok = engine::Tokenizer::FromGguf(*env->file);
  if (!tok.ok()) std::exit(2);
  env->tokenizer = std::move(*tok);
  // A built-in family and two files whose templates print tools.
  for (std::string choice :
       {std::string("chatml"),
        data + "/templates/Qwen-Qwen2.5-7B-Instruct.jinja",
        data + "/templates/meta-llama-Llama-3.1-8B-Instruct.jinja"}) {
    auto t = chat::ChatTemplate::Create(chat::ModelTemplates{}, choice);
    if (!t.ok()) {
      std::fprintf(stderr, "request_fuzzer: %s: %s\n", choice.c_str(),
                   t.status().ToString().c_str());
      std::exit(2);
    }
    env->templates.push_back(std::move(*t));
  }
  env->constraints =
      std::make_unique<engine::constrained::ConstraintCache>(*env->tokenizer);
  return env;
}

Env& GetEnv() {
  static Env* env = LoadEnv();
  return *env;
}

std::unique_ptr<Message> NewRequest(int kind) {
  switch (kind) {
    case kTokenize:
      return std::make_unique<lumen::v1::TokenizeRequest>();
    case kDetokenize:
      return std::make_unique<lumen::v1::DetokenizeRequest>();
    default:
      return std::make_unique<lumen::v1::GenerateRequest>();
  }
}

// What the engine does with accepted parameters, without a model: its
// admission checks (a prompt refused there is an InvalidArgument, as
// BuildGenerateParams' are), then up to four decode steps of the real
// sampler on made-up logits with the request's sampling parameters, masked
// and advanced by its constraint. A lazy constraint is armed at once with
// its trigger's text, which its grammar must accept (for any tools: the
// trigger begins every call the grammar takes).
void RunFakeEngine(const engine::GenerateParams& p, int64_t context_size,
                   const Message& req) {
  const auto& c = p.constraint;
  const std::string& trigger = p.constraint_trigger;
  const int32_t n_vocab = GetEnv().tokenizer->vocab().size();
  if (static_cast<int64_t>(p.prompt_tokens.size()) >= context_size) return;
  if (p.max_tokens < 1) Fail("max_tokens below 1 was accepted", req);
  if (p.logprobs < 0) Fail("negative logprobs were accepted", req);
  const engine::SamplingParams& sp = p.sampling;
  for (float v : {sp.temperature, sp.top_p, sp.min_p, sp.repetition_penalty,
                  sp.presence_penalty, sp.frequency_penalty}) {
    if (!std::isfinite(v)) Fail("a sampling parameter is not finite", req);
  }
  std::optional<engine::constrained::ConstraintState> state;
  if (c != nullptr) {
    auto s = c->NewState();
    if (!s.ok()) {
      if (s.status().code() != absl::StatusCode::kResourceExhausted)
        Fail("NewState: " + s.status().ToString(), req);
      return;
    }
    state = std::move(*s);
    if (!trigger.empty() && !state->AcceptText(trigger).ok())
      Fail("the tool-call grammar refuses its own trigger " + trigger, req);
  }
  engine::SamplerState sampler_state(sp);
  engine::Sampler sampler;
  std::vector<float> logits(n_vocab);
  std::vector<uint32_t> mask((n_vocab + 31) / 32);
  engine::TokenLogprob chosen{};
  std::vector<engine::TokenLogprob> alternatives;
  std::minstd_rand rng(static_cast<uint32_t>(sp.seed));
  const int steps = std::min(p.max_tokens, 4);
  for (int step = 0; step < steps; ++step) {
    for (float& l : logits) l = static_cast<float>(rng() % 1000) / 100.0f;
    absl::StatusOr<int32_t> token;
    const bool masked = state.has_value();
    if (masked) {
      if (!state->FillAllowedMask(mask).ok()) return;  // limits: a refusal
      token = sampler.SampleMasked(logits, mask, &sampler_state, p.logprobs,
                                   &chosen, &alternatives);
      if (!token.ok()) return;  // the engine fails the request (no token)
    } else {
      token = sampler.Sample(logits, &sampler_state, p.logprobs, &chosen,
                             &alternatives);
    }
    if (*token < 0 || *token >= n_vocab)
      Fail("the sampler drew a token outside the vocab", req);
    if (static_cast<int32_t>(alternatives.size()) > p.logprobs)
      Fail("more logprob alternatives than asked for", req);
    sampler_state.Accept(*token);
    if (masked && !state->AcceptToken(*token).ok())
      Fail("the constraint refused a token its mask allowed", req);
    if (masked && state->IsComplete()) return;
  }
}

void RunGenerate(const lumen::v1::GenerateRequest& req, uint8_t selector) {
  Env& env = GetEnv();
  const RequestLimits limits;
  const absl::Status valid = ValidateGenerateRequest(req, limits);
  CheckRefusal(valid, "ValidateGenerateRequest", req);
  if (!valid.ok()) return;
  // The knowledge store's part: a few passages about the question.
  std::vector<retrieval::ChunkHit> passages;
  if (std::optional<RagQuery> rag = RagQueryOf(req)) {
    if (rag->collections.empty() || rag->search.top_k <= 0)
      Fail("RagQueryOf of a RAG request", req);
    const int n = std::min(rag->search.top_k, 3);
    for (int i = 0; i < n; ++i) {
      retrieval::ChunkHit hit;
      hit.collection = rag->collections[0];
      hit.document_id = "doc" + std::to_string(i);
      hit.chunk_id = i;
      hit.score = 1.0 / (i + 1);
      for (int r = 0; r <= i; ++r) hit.text += rag->search.query + " ";
      hit.end = static_cast<int64_t>(hit.text.size());
      hit.title = "title " + std::to_string(i);
      passages.push_back(std::move(hit));
    }
  }
  static constexpr int64_t kContexts[] = {4096, 512, 16, 1};
  ModelContext model{"stories260K", env.tokenizer.get(),
                     kContexts[(selector >> 4) % 4],
                     env.templates[(selector >> 2) % 4 % 3].get()};
  auto built = BuildGenerateParams(req, model, passages, limits);
  CheckRefusal(built.status(), "BuildGenerateParams", req);
  if (!built.ok()) return;
  const int32_t n_vocab = env.tokenizer->vocab().size();
  if (built->params.prompt_tokens.empty()) Fail("an empty prompt", req);
  for (int32_t id : built->params.prompt_tokens) {
    if (id < 0 || id >= n_vocab) Fail("a prompt token outside the vocab", req);
  }
  if (built->citations.size() > passages.size())
    Fail("more citations than passages", req);
  // The pipeline's own choice of output constraint.
  const absl::Status constrained =
      SetOutputConstraint(req, *env.constraints, &*built);
  CheckRefusal(constrained, "SetOutputConstraint", req);
  if (!constrained.ok()) return;
  RunFakeEngine(built->params, model.context_size, req);
}

void RunTokenize(const lumen::v1::TokenizeRequest& req) {
  const engine::Tokenizer& tok = *GetEnv().tokenizer;
  const int32_t n_vocab = tok.vocab().size();
  for (int32_t id :
       tok.Encode(req.text(), req.add_special(), req.parse_special())) {
    if (id < 0 || id >= n_vocab)
      Fail("Encode gave an id outside the vocab", req);
    (void)tok.TokenToPiece(id, true);
  }
}

void RunDetokenize(const lumen::v1::DetokenizeRequest& req) {
  const engine::Tokenizer& tok = *GetEnv().tokenizer;
  std::vector<int32_t> ids(req.token_ids().begin(), req.token_ids().end());
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.vocab().size()) return;  // the handler refuses
  }
  if (!IsValidUtf8(ToValidUtf8(tok.Decode(ids, req.render_special()))))
    Fail("Detokenize text is not valid UTF-8", req);
}

// ---- The mutator ----

using Rng = std::minstd_rand;

size_t Below(Rng& rng, size_t n) { return n == 0 ? 0 : rng() % n; }

// Fragments the request path parses: schemas, regexes, GBNF, chat roles,
// tools, special tokens, RAG templates.
const char* const kDictionary[] = {
    "",
    "user",
    "system",
    "assistant",
    "tool",
    "Once upon a time",
    "<s>",
    "</s>",
    "<|im_start|>",
    "{passages}",
    "Answer from {passages} only.",
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
    "\"required\":[\"a\"]}",
    "{\"type\":\"string\",\"pattern\":\"^[a-z]+$\",\"maxLength\":3}",
    "{\"type\":\"array\",\"items\":{\"enum\":[1,\"x\",null]},\"minItems\":2}",
    "{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"anyOf\":[{\"type\":\"null\"},"
    "{\"$ref\":\"#/$defs/a\"}]}}}",
    "{\"type\":\"number\",\"minimum\":-1e308,\"maximum\":1e308}",
    "{\"type\":\"integer\",\"minimum\":9223372036854775807}",
    "[a-z]{2,5}",
    "(ab|c)*d?",
    "\\d{1,3}(\\.\\d{1,3}){3}",
    "[^\\x00-\\x7f]+",
    "a{99999}",
    "root ::= \"yes\" | \"no\"",
    "root ::= [a-z]+ ws\nws ::= [ \\t\\n]*",
    "root ::= x\nx ::= \"(\" x \")\" | \"\"",
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":"
    "{\"type\":\"string\"}},\"required\":[\"city\"]}}}]",
    "\"required\"",
    "\"auto\"",
    "\"none\"",
    "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}",
    "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
    "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]",
    "call_1",
    "你好",
    "हिन्दी",
    "😀",
    "e\xcc\x81",
    "null",
    "[]",
    "{}",
};

// Text: from the dictionary, random bytes (often invalid UTF-8), random
// code points, or the old text changed, grown or cut.
std::string MutateString(const std::string& old, Rng& rng) {
  switch (Below(rng, 8)) {
    case 0:
      return "";
    case 1:
    case 2:
      return kDictionary[Below(rng, std::size(kDictionary))];
    case 3: {  // random bytes
      std::string s(Below(rng, 24), '\0');
      for (char& c : s) c = static_cast<char>(rng());
      return s;
    }
    case 4: {  // random code points, some outside the BMP
      std::string s;
      for (size_t i = Below(rng, 12); i > 0; --i) {
        uint32_t cp = Below(rng, 2) ? 0x20 + Below(rng, 0x60)
                                    : 0x80 + Below(rng, 0x10FF80);
        if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
        AppendUtf8(cp, &s);
      }
      return s;
    }
    case 5: {  // libFuzzer's byte mutations on the text
      std::string s = old;
      const size_t cap = s.size() + 16;
      s.resize(cap);
      s.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(s.data()),
                                old.size(), cap));
      return s;
    }
    case 6: {  // grown: repeated up to a few kilobytes
      std::string s = old.empty() ? std::string("ab") : old;
      const size_t times = 1 + Below(rng, 4096 / s.size() + 1);
      std::string out;
      for (size_t i = 0; i < times && out.size() < 8192; ++i) out += s;
      return out;
    }
    default:
      return old.substr(0, Below(rng, old.size() + 1)) +
             kDictionary[Below(rng, std::size(kDictionary))];
  }
}

int64_t EdgeInteger(Rng& rng, int64_t lo, int64_t hi) {
  const int64_t edges[] = {0,         1,         -1,
                           2,         3,         4,
                           16,        20,        21,
                           50,        51,        128,
                           255,       256,       511,
                           512,       513,       65535,
                           INT32_MAX, INT32_MIN, int64_t{UINT32_MAX},
                           INT64_MAX, INT64_MIN};
  int64_t v;
  switch (Below(rng, 3)) {
    case 0:
      v = edges[Below(rng, std::size(edges))];
      break;
    case 1:
      v = static_cast<int64_t>(Below(rng, 600));  // about the vocabulary
      break;
    default:
      v = static_cast<int64_t>((uint64_t{rng()} << 32) ^ rng());
  }
  return std::clamp(v, lo, hi);
}

double EdgeDouble(Rng& rng) {
  const double edges[] = {0.0,
                          -0.0,
                          1.0,
                          -1.0,
                          0.5,
                          2.0,
                          -2.0,
                          10.0,
                          100.0,
                          1e-45,
                          1e30,
                          -1e30,
                          std::numeric_limits<double>::max(),
                          std::numeric_limits<double>::quiet_NaN(),
                          std::numeric_limits<double>::infinity(),
                          -std::numeric_limits<double>::infinity()};
  if (Below(rng, 2)) return edges[Below(rng, std::size(edges))];
  return (static_cast<double>(Below(rng, 2001)) - 1000.0) / 250.0;
}

void SetScalar(Message* m, const FieldDescriptor* f, Rng& rng) {
  const Reflection* r = m->GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      r->SetInt32(m, f,
                  static_cast<int32_t>(EdgeInteger(rng, INT32_MIN, INT32_MAX)));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      r->SetInt64(m, f, EdgeInteger(rng, INT64_MIN, INT64_MAX));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      r->SetUInt32(
          m, f, static_cast<uint32_t>(EdgeInteger(rng, INT32_MIN, INT64_MAX)));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      r->SetUInt64(
          m, f, static_cast<uint64_t>(EdgeInteger(rng, INT64_MIN, INT64_MAX)));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      r->SetFloat(m, f, static_cast<float>(EdgeDouble(rng)));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      r->SetDouble(m, f, EdgeDouble(rng));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      r->SetBool(m, f, !r->GetBool(*m, f));
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      // proto3 enums are open: unknown numbers arrive too.
      r->SetEnumValue(
          m, f,
          Below(rng, 4)
              ? f->enum_type()
                    ->value(Below(rng, f->enum_type()->value_count()))
                    ->number()
              : static_cast<int>(EdgeInteger(rng, INT32_MIN, INT32_MAX)));
      break;
    case FieldDescriptor::CPPTYPE_STRING:
      r->SetString(m, f, MutateString(r->GetString(*m, f), rng));
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
}

void MutateMessage(Message* m, Rng& rng, int depth);

// Appends one element to the repeated field `f`.
void AddElement(Message* m, const FieldDescriptor* f, Rng& rng, int depth) {
  const Reflection* r = m->GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      r->AddInt32(m, f,
                  static_cast<int32_t>(EdgeInteger(rng, INT32_MIN, INT32_MAX)));
      break;
    case FieldDescriptor::CPPTYPE_STRING:
      r->AddString(m, f, MutateString("", rng));
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      MutateMessage(r->AddMessage(m, f), rng, depth + 1);
      break;
    default:  // the request protos repeat only these
      break;
  }
}

void MutateRepeated(Message* m, const FieldDescriptor* f, Rng& rng, int depth) {
  const Reflection* r = m->GetReflection();
  const int n = r->FieldSize(*m, f);
  switch (Below(rng, 6)) {
    case 0:
      r->ClearField(m, f);
      break;
    case 1:
      if (n > 0) r->RemoveLast(m, f);
      break;
    case 2:  // grown: many elements (limits, loops over them)
      for (size_t i = 1 + Below(rng, 64); i > 0; --i)
        AddElement(m, f, rng, depth);
      break;
    case 3:
      if (n > 0 && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        MutateMessage(r->MutableRepeatedMessage(m, f, Below(rng, n)), rng,
                      depth + 1);
        break;
      }
      if (n > 0 && f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        const int i = Below(rng, n);
        r->SetRepeatedString(m, f, i,
                             MutateString(r->GetRepeatedString(*m, f, i), rng));
        break;
      }
      if (n > 0 && f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
        r->SetRepeatedInt32(
            m, f, Below(rng, n),
            static_cast<int32_t>(EdgeInteger(rng, INT32_MIN, INT32_MAX)));
        break;
      }
      [[fallthrough]];
    default:
      AddElement(m, f, rng, depth);
  }
}

void MutateMessage(Message* m, Rng& rng, int depth) {
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  if (d->field_count() == 0) return;
  const FieldDescriptor* f = d->field(Below(rng, d->field_count()));
  const Reflection* r = m->GetReflection();
  if (f->is_repeated()) return MutateRepeated(m, f, rng, depth);
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (depth >= 4 || Below(rng, 6) == 0) {
      r->ClearField(m, f);
    } else {
      MutateMessage(r->MutableMessage(m, f), rng, depth + 1);
    }
    return;
  }
  if (Below(rng, 6) == 0) {
    r->ClearField(m, f);  // unset: optional fields take their defaults
  } else {
    SetScalar(m, f, rng);
  }
}

// Writes every seed of LUMEN_REQUEST_SEEDS to `out` as fuzzer inputs: the
// selector byte (the kind named by the file's prefix; for a GenerateRequest
// one input per chat template, with the largest context) and the
// serialized request. Exits on any seed that does not parse: a broken seed
// is a broken test.
void WriteSeeds(const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  std::vector<fs::path> seeds;
  for (const auto& e : fs::directory_iterator(LUMEN_REQUEST_SEEDS)) {
    if (e.path().extension() == ".textproto") seeds.push_back(e.path());
  }
  std::sort(seeds.begin(), seeds.end());
  fs::create_directories(out);
  int written = 0;
  for (const fs::path& seed : seeds) {
    const std::string name = seed.filename().string();
    const int kind = name.starts_with("tokenize_")     ? kTokenize
                     : name.starts_with("detokenize_") ? kDetokenize
                                                       : kGenerate;
    std::ifstream in(seed);
    std::stringstream text;
    text << in.rdbuf();
    std::unique_ptr<Message> req = NewRequest(kind);
    if (!google::protobuf::TextFormat::ParseFromString(text.str(), req.get())) {
      std::fprintf(stderr, "request_fuzzer: seed %s does not parse\n",
                   seed.c_str());
      std::exit(2);
    }
    // Selector bits 2-3: the chat template; bits 4-5: the context (0: 4096).
    for (int tmpl = 0; tmpl < (kind == kGenerate ? 3 : 1); ++tmpl) {
      const auto selector = static_cast<char>(kind | (tmpl << 2));
      std::ofstream(out / (seed.stem().string() + "_" + std::to_string(tmpl)),
                    std::ios::binary)
          << selector << req->SerializeAsString();
      ++written;
    }
  }
  std::printf("request_fuzzer: %d inputs from %zu seeds written to %s\n",
              written, seeds.size(), out.c_str());
  std::exit(seeds.empty() ? 2 : 0);
}

}  // namespace
}  // namespace lumen::server

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* out = std::getenv("LUMEN_WRITE_SEEDS")) {
    lumen::server::WriteSeeds(out);
  }
  // Invalid UTF-8 in a string field is refused by parsing; protobuf's log
  // line about it is expected noise.
  google::protobuf::SetLogHandler(nullptr);
  lumen::server::GetEnv();
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size,
                                          size_t max_size, unsigned seed) {
  using namespace lumen::server;
  Rng rng(seed);
  if (size == 0 || Below(rng, 8) == 0) {
    return LLVMFuzzerMutate(data, size, max_size);
  }
  uint8_t selector = data[0];
  if (Below(rng, 16) == 0) selector = static_cast<uint8_t>(rng());
  std::unique_ptr<google::protobuf::Message> req = NewRequest(selector % 4);
  if (!req->ParseFromArray(data + 1, static_cast<int>(size - 1))) req->Clear();
  for (size_t i = 1 + Below(rng, 3); i > 0; --i)
    MutateMessage(req.get(), rng, 0);
  const std::string bytes = req->SerializeAsString();
  if (bytes.size() + 1 > max_size)
    return LLVMFuzzerMutate(data, size, max_size);
  data[0] = selector;
  std::copy(bytes.begin(), bytes.end(), data + 1);
  return bytes.size() + 1;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lumen::server;
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  std::unique_ptr<google::protobuf::Message> req = NewRequest(selector % 4);
  // What does not parse never reaches a handler (INVALID_ARGUMENT from
  // parse_checked_service.h).
  if (!req->ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  switch (selector % 4) {
    case kTokenize:
      RunTokenize(static_cast<const lumen::v1::TokenizeRequest&>(*req));
      break;
    case kDetokenize:
      RunDetokenize(static_cast<const lumen::v1::DetokenizeRequest&>(*req));
      break;
    default:
      RunGenerate(static_cast<const lumen::v1::GenerateRequest&>(*req),
                  selector);
  }
  return 0;
}
