#pragma once
// RagRetriever: the retrieval half of a RAG request, shared by every front
// end. It searches the collections the caller may read, merges their hits
// by score, and fits the passages into the prompt: passages are added in
// rank order while the rendered prompt plus max_tokens fits the context; a
// passage that does not fit is cut at a sentence boundary, or dropped when
// not even its first sentence fits. The citations are exactly the passages
// (and byte spans of the documents) the model sees. Only a question that
// cannot fit even without passages is an error.
//
// The prompt's final form belongs to the caller (a chat template, a plain
// prompt): it passes a callback that renders the final prompt around a RAG
// block and counts its tokens.
//
// Threads: Retrieve/Build may be called from any thread, concurrently; they
// block on the store (searching, embedding the query), so callers run them
// off their RPC threads.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "retrieval/access.h"
#include "retrieval/knowledge_store.h"

namespace lumen::retrieval {

// The default RAG prompt: {passages} becomes the numbered passages,
// {question} the question.
inline constexpr const char* kDefaultRagTemplate =
    "Use the numbered passages below to answer. Cite the passages you use by "
    "number, like [1].\n\n{passages}Question: {question}\nAnswer:";

struct RagRequest {
  std::vector<std::string> collections;
  // query: the question; top_k (over all collections), min_score, filter,
  // mode as for Search.
  SearchRequest search;
  // Must contain {passages}; empty: kDefaultRagTemplate.
  std::string prompt_template;
};

// Renders the caller's final prompt with `rag_block` in it and returns its
// length in tokens (errors pass through).
using PromptTokenCounter =
    std::function<absl::StatusOr<int64_t>(const std::string& rag_block)>;

struct PromptBudget {
  int64_t context_size = 0;  // tokens of context per sequence
  int64_t max_tokens = 0;    // tokens the answer may take
  PromptTokenCounter count_prompt_tokens;
};

struct RagContext {
  // The rendered template: numbered passages and the question.
  std::string block;
  // The passages in `block`, in order (citation i is passage [i + 1]): text
  // is exactly what the model sees and [start, end) its span in the
  // document (a truncated passage has a shorter span).
  std::vector<ChunkHit> citations;
  int64_t prompt_tokens = 0;  // of the final prompt, as counted
  int truncated = 0;          // passages cut at a sentence boundary
  int dropped = 0;            // retrieved passages left out: no room
  double retrieval_seconds = 0;
};

// The block for `passages`: "[n] title (source)\n" + text per passage, in
// the template with the question. Pure.
std::string RenderRagBlock(const std::string& prompt_template,
                           const std::vector<ChunkHit>& passages,
                           const std::string& question);

// Fits ranked passages into the budget (see the file comment). Pure apart
// from the callback. InvalidArgument when the question alone (the template
// without passages) plus max_tokens exceeds the context, or when the
// template lacks {passages}.
absl::StatusOr<RagContext> FitPassages(const std::vector<ChunkHit>& ranked,
                                       const std::string& question,
                                       const std::string& prompt_template,
                                       const PromptBudget& budget);

class RagRetriever {
 public:
  // `store` must outlive the retriever.
  explicit RagRetriever(KnowledgeStore* store) : store_(store) {}

  // Searches every collection of the request that `principal` may read,
  // merges the hits by score and keeps the best top_k. PERMISSION_DENIED for
  // a collection it may not read (the same whether or not it exists; admins
  // get NOT_FOUND); InvalidArgument without collections or question.
  absl::StatusOr<std::vector<ChunkHit>> Retrieve(
      const Principal& principal, const RagRequest& request) const;

  // Retrieve, then FitPassages.
  absl::StatusOr<RagContext> Build(const Principal& principal,
                                   const RagRequest& request,
                                   const PromptBudget& budget) const;

 private:
  KnowledgeStore* store_;
};

}  // namespace lumen::retrieval
