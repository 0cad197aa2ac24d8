#include "retrieval/rag_retriever.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/status_macros.h"
#include "retrieval/chunker.h"

namespace lumen::retrieval {

std::string RenderRagBlock(const std::string& prompt_template,
                           const std::vector<ChunkHit>& passages,
                           const std::string& question) {
  std::string text;
  for (size_t i = 0; i < passages.size(); ++i) {
    const ChunkHit& h = passages[i];
    absl::StrAppend(&text, "[", i + 1, "] ",
                    h.title.empty() ? h.document_id : h.title,
                    h.source.empty() ? "" : absl::StrCat(" (", h.source, ")"),
                    "\n", h.text, "\n\n");
  }
  return absl::StrReplaceAll(prompt_template,
                             {{"{passages}", text}, {"{question}", question}});
}

absl::StatusOr<RagContext> FitPassages(const std::vector<ChunkHit>& ranked,
                                       const std::string& question,
                                       const std::string& prompt_template,
                                       const PromptBudget& budget) {
  const std::string tmpl =
      prompt_template.empty() ? kDefaultRagTemplate : prompt_template;
  if (tmpl.find("{passages}") == std::string::npos) {
    return absl::InvalidArgumentError(
        "rag.prompt_template must contain {passages}");
  }
  if (!budget.count_prompt_tokens) {
    return absl::InvalidArgumentError("RAG needs a prompt token counter");
  }
  // Tokens of the final prompt with these passages, or nullopt when it and
  // the answer do not fit the context.
  auto fitting = [&](const std::vector<ChunkHit>& passages)
      -> absl::StatusOr<std::optional<int64_t>> {
    ASSIGN_OR_RETURN(int64_t tokens, budget.count_prompt_tokens(RenderRagBlock(
                                         tmpl, passages, question)));
    if (tokens + budget.max_tokens > budget.context_size) return std::nullopt;
    return tokens;
  };

  RagContext ctx;
  ASSIGN_OR_RETURN(std::optional<int64_t> tokens, fitting({}));
  if (!tokens.has_value()) {
    ASSIGN_OR_RETURN(int64_t alone, budget.count_prompt_tokens(
                                        RenderRagBlock(tmpl, {}, question)));
    return absl::InvalidArgumentError(
        absl::StrCat("the prompt without any passage is ", alone,
                     " tokens, which with max_tokens ", budget.max_tokens,
                     " exceeds the context of ", budget.context_size,
                     " tokens: shorten the question or lower max_tokens"));
  }
  std::vector<ChunkHit> chosen;
  for (const ChunkHit& hit : ranked) {
    chosen.push_back(hit);
    ASSIGN_OR_RETURN(std::optional<int64_t> whole, fitting(chosen));
    if (whole.has_value()) {
      tokens = whole;
      continue;
    }
    // Too long: keep the longest run of its first sentences that fits
    // (binary search over the number of sentences; the count grows with it).
    const std::vector<absl::string_view> sentences = SplitSentences(hit.text);
    auto prefix = [&](size_t n) {
      const absl::string_view& last = sentences[n - 1];
      const size_t len = last.data() + last.size() - hit.text.data();
      return std::string(absl::StripTrailingAsciiWhitespace(
          absl::string_view(hit.text).substr(0, len)));
    };
    size_t lo = 1, hi = sentences.empty() ? 0 : sentences.size() - 1;
    size_t best = 0;
    std::optional<int64_t> best_tokens;
    while (lo <= hi) {
      const size_t mid = lo + (hi - lo) / 2;
      chosen.back().text = prefix(mid);
      ASSIGN_OR_RETURN(std::optional<int64_t> n, fitting(chosen));
      if (n.has_value()) {
        best = mid;
        best_tokens = n;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (best == 0) {
      chosen.pop_back();
      ++ctx.dropped;
      continue;
    }
    ChunkHit& cut = chosen.back();
    cut.text = prefix(best);
    cut.end = cut.start + static_cast<int64_t>(cut.text.size());
    tokens = best_tokens;
    ++ctx.truncated;
  }
  ctx.block = RenderRagBlock(tmpl, chosen, question);
  ctx.citations = std::move(chosen);
  ctx.prompt_tokens = *tokens;
  return ctx;
}

absl::StatusOr<std::vector<ChunkHit>> RagRetriever::Retrieve(
    const Principal& principal, const RagRequest& request) const {
  if (request.collections.empty()) {
    return absl::InvalidArgumentError("rag.collections is empty");
  }
  if (request.search.query.empty()) {
    return absl::InvalidArgumentError("rag needs a question to search for");
  }
  std::vector<ChunkHit> all;
  std::set<std::string> seen;
  for (const std::string& name : request.collections) {
    if (!seen.insert(name).second) continue;
    RETURN_IF_ERROR(
        AuthorizeCollection(*store_, principal, name, /*write=*/false)
            .status());
    ASSIGN_OR_RETURN(std::vector<ChunkHit> hits,
                     store_->Search(name, request.search));
    for (ChunkHit& h : hits) all.push_back(std::move(h));
  }
  std::stable_sort(
      all.begin(), all.end(),
      [](const ChunkHit& a, const ChunkHit& b) { return a.score > b.score; });
  if (static_cast<int>(all.size()) > request.search.top_k) {
    all.resize(request.search.top_k);
  }
  return all;
}

absl::StatusOr<RagContext> RagRetriever::Build(
    const Principal& principal, const RagRequest& request,
    const PromptBudget& budget) const {
  const auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(std::vector<ChunkHit> hits, Retrieve(principal, request));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSIGN_OR_RETURN(
      RagContext ctx,
      FitPassages(hits, request.search.query, request.prompt_template, budget));
  ctx.retrieval_seconds = seconds;
  return ctx;
}

}  // namespace lumen::retrieval
