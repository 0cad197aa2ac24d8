#pragma once
// EmbeddingWorker: the embedding model (BertEncoder) behind its own threads
// ("lanes"), so RPC threads never run model code. Embed() tokenizes on the
// caller's thread, queues the token sequences and waits. Each lane runs
// passes of up to ~4096 tokens (one ragged batch each) filled from every
// queued job, so concurrent ingests share encoder passes; single-text jobs
// (search queries, the Embed RPC) go first, so a query waits for at most one
// pass of a large ingest, not for the whole ingest. Lanes encode different
// passes at once on the shared, read-only weights, each with its own
// workspace and a small OpenMP team: independent lanes keep the cores busy
// where one wide team would wait at every barrier for a descheduled thread
// (a shared or oversubscribed machine). Implements the knowledge store's
// Embedder.
//
// Threads: Embed/CountTokens from any thread. The lanes own their
// workspaces and OpenMP teams (sized inside each lane, see Load).

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/model/bert_encoder.h"
#include "engine/tokenizer/tokenizer.h"
#include "retrieval/embedder.h"

namespace lumen::server {

class EmbeddingWorker : public retrieval::Embedder {
 public:
  // Loads a GGUF bert model. InvalidArgument for other architectures.
  // `threads`: compute threads in all (0: the machine's cores), as
  // min(threads, 4) lanes with threads / lanes OpenMP threads each.
  static absl::StatusOr<std::unique_ptr<EmbeddingWorker>> Load(
      const std::string& path, int threads = 0);
  // The OpenMP team of each lane Load starts for `threads` (as above).
  static std::vector<int> LaneTeams(int threads);
  // Lets the lanes finish their passes, joins them, then fails the jobs
  // still queued (Unavailable).
  ~EmbeddingWorker() override;

  int dim() const override { return encoder_->dim(); }
  // general.name (or the file name), the dimension and a checksum of the
  // tensor data, so collections know which model made their vectors.
  retrieval::EmbeddingModelInfo model() const override { return model_; }
  int CountTokens(absl::string_view text) const override;
  // Thread-safe; blocks until the worker has embedded `texts`.
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) override;
  const std::string& path() const { return path_; }

 private:
  struct Job {
    std::vector<std::vector<int32_t>> sequences;
    std::vector<std::vector<float>> embeddings;  // [sequences][dim]
    size_t next = 0;  // first sequence not yet in a pass (worker only)
    size_t done = 0;  // sequences embedded (worker only)
    std::promise<absl::StatusOr<std::vector<std::vector<float>>>> result;
  };
  // A sequence of a job, in a pass.
  struct Item {
    Job* job;
    size_t index;
  };
  EmbeddingWorker() = default;
  // One lane: takes passes until stopping. `team`: its OpenMP threads.
  void Lane(int team);
  // The next pass: queries first, then ingests in arrival order, up to the
  // token budget (at least one sequence). Caller holds mu_.
  std::vector<Item> NextPass();
  // Removes a finished (or failed) job from its queue and wakes its caller;
  // the caller holds mu_. The job may be gone once this returns.
  void Complete(Job* job, absl::Status error);

  std::string path_;
  retrieval::EmbeddingModelInfo model_;
  std::unique_ptr<engine::GgufFile> file_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  std::unique_ptr<engine::BertEncoder> encoder_;  // read-only once loaded
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> queries_;  // single-text jobs; guarded by mu_
  std::deque<Job*> bulk_;     // the others; guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  std::vector<std::thread> lanes_;
};

}  // namespace lumen::server
