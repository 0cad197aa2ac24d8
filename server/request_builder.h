#pragma once
// The front ends' shared request path, as pure functions (no I/O, no
// locks): validation of a generate request, its RAG query, and the engine
// parameters (templating, RAG passages, tokenization). gRPC hands its
// GenerateRequest over directly; the HTTP front end translates OpenAI JSON
// into one first. Errors are InvalidArgument naming the field; the field's
// path (e.g. "sampling.top_p") is attached as the payload kFieldPayload so
// a front end can name it in its own terms.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chat/chat_template.h"
#include "chat/tool_call_parser.h"
#include "engine/constrained/constraint.h"
#include "engine/constrained/constraint_cache.h"
#include "engine/generation.h"
#include "engine/tokenizer/tokenizer.h"
#include "lumen/v1/inference.pb.h"
#include "retrieval/knowledge_store.h"
#include "server/tool_calls.h"

namespace lumen::server {

// Status payload type URL carrying the offending field's path.
inline constexpr char kFieldPayload[] = "lumen.dev/field";

// InvalidArgument "`field` `message`" with the field path as payload.
absl::Status FieldError(absl::string_view field, absl::string_view message);
// The field path attached by FieldError, or "".
std::string FieldOf(const absl::Status& status);

// What the builder needs to know about the model a request goes to.
struct ModelContext {
  std::string name;
  const engine::Tokenizer* tokenizer = nullptr;
  int64_t context_size = 0;
  // Renders chat messages (null: the request must not have messages).
  const chat::ChatTemplate* chat_template = nullptr;
};

// Limits on a request's shape (SPEC: each violation names the limit).
struct RequestLimits {
  int max_stop_strings = 16;
  int max_stop_bytes = 256;
  int64_t max_prompt_bytes = 4 << 20;
  int max_rag_top_k = 50;
  int max_logprobs = 20;
};

// Everything checkable without the model: sampling ranges, stop strings,
// prompt sources, RAG options, constraint presence. Cheap; run it before
// any retrieval.
absl::Status ValidateGenerateRequest(const lumen::v1::GenerateRequest& r,
                                     const RequestLimits& limits = {});

// What RAG must search for a (valid) request with rag.collections, or
// nullopt without RAG.
struct RagQuery {
  std::vector<std::string> collections;
  retrieval::SearchRequest search;  // query = the question
};
std::optional<RagQuery> RagQueryOf(const lumen::v1::GenerateRequest& r);

struct BuiltRequest {
  engine::GenerateParams params;
  // The passages the model sees, in prompt order (RAG).
  std::vector<retrieval::ChunkHit> citations;
  // A chat request offering tools (tool_choice not none): the model's
  // tool-call format, in which the output is parsed.
  std::optional<chat::ToolCallFormat> tool_format;
  // GBNF the output must follow when a tool call is required (empty: none);
  // the caller compiles it as the request's constraint.
  std::string tool_grammar;
  // tool_choice "auto": the grammar is lazy, from the family's call trigger
  // on (empty text when the call is required).
  ToolTrigger tool_trigger;
};

// The engine parameters of a valid request: sampling, the prompt (chat
// template, RAG passages in rank order while the prompt plus max_tokens fits
// the context; a passage that does not fit is cut at a sentence end or
// dropped), token ids. User text never becomes control tokens. Adapter,
// constraint, deadline and cache salt are the caller's to set.
// InvalidArgument (naming the field) for a request the model cannot take,
// e.g. a question longer than the context.
absl::StatusOr<BuiltRequest> BuildGenerateParams(
    const lumen::v1::GenerateRequest& r, const ModelContext& model,
    std::vector<retrieval::ChunkHit> passages,
    const RequestLimits& limits = {});

// The request's output constraint (json_schema, json_object true, regex,
// grammar), or nullopt; the caller compiles it (ConstraintCache::Get).
std::optional<engine::constrained::ConstraintSpec> ConstraintOf(
    const lumen::v1::SamplingParams& s);
// The field path of that constraint ("sampling.regex"), for errors.
const char* ConstraintField(const lumen::v1::SamplingParams& s);

// Sets built->params' output constraint, compiled in `cache`: the request's
// response format, or the tool-call grammar of a required call (the two
// never come together: BuildGenerateParams refuses it). In "auto" the lazy
// tool-call grammar applies only when there is no response format, and
// stays off if it cannot be compiled. InvalidArgument naming the field for
// a constraint that does not compile.
absl::Status SetOutputConstraint(const lumen::v1::GenerateRequest& req,
                                 engine::constrained::ConstraintCache& cache,
                                 BuiltRequest* built);

}  // namespace lumen::server
