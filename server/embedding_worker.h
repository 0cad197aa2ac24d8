#pragma once
// EmbeddingWorker: the embedding model (BertEncoder) behind its own thread,
// so RPC threads never run model code. Embed() tokenizes on the caller's
// thread, queues the token sequences and waits; the worker takes every job
// queued meanwhile (up to a token budget) and encodes them in one ragged
// batch, so concurrent ingests and queries share encoder passes.
// Implements the knowledge store's Embedder.
//
// Threads: Embed/CountTokens from any thread. The worker thread owns the
// encoder and its OpenMP team (sized inside it, see Load).

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/gguf/gguf_file.h"
#include "engine/model/bert_encoder.h"
#include "engine/tokenizer/tokenizer.h"
#include "retrieval/embedder.h"

namespace lumen::server {

class EmbeddingWorker : public retrieval::Embedder {
 public:
  // Loads a GGUF bert model. InvalidArgument for other architectures.
  // `threads`: the worker's OpenMP team (0: the OpenMP default).
  static absl::StatusOr<std::unique_ptr<EmbeddingWorker>> Load(
      const std::string& path, int threads = 0);
  ~EmbeddingWorker() override;  // fails queued jobs (Unavailable), joins

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
    std::promise<absl::StatusOr<std::vector<std::vector<float>>>> done;
  };
  EmbeddingWorker() = default;
  void Loop(int threads);

  std::string path_;
  retrieval::EmbeddingModelInfo model_;
  std::unique_ptr<engine::GgufFile> file_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  std::unique_ptr<engine::BertEncoder> encoder_;  // worker thread only
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> jobs_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace lumen::server
