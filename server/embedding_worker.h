#pragma once
// EmbeddingWorker: the embedding model (BertEncoder) behind its own thread,
// so RPC threads never run model code: Embed() queues the texts and waits for
// the worker's answer. Implements the knowledge store's Embedder.

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/gguf/gguf_file.h"
#include "engine/model/bert_encoder.h"
#include "engine/tokenizer/tokenizer.h"
#include "retrieval/knowledge_store.h"

namespace lumen::server {

class EmbeddingWorker : public retrieval::Embedder {
 public:
  // Loads a GGUF bert model. InvalidArgument for other architectures.
  static absl::StatusOr<std::unique_ptr<EmbeddingWorker>> Load(
      const std::string& path);
  ~EmbeddingWorker() override;

  int dim() const override { return encoder_->dim(); }
  int CountTokens(absl::string_view text) const override;
  // Thread-safe; blocks until the worker has embedded `texts`.
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) override;
  const std::string& path() const { return path_; }

 private:
  struct Job {
    std::vector<std::string> texts;
    std::promise<absl::StatusOr<std::vector<std::vector<float>>>> done;
  };
  EmbeddingWorker() = default;
  void Loop();

  std::string path_;
  std::unique_ptr<engine::GgufFile> file_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  std::unique_ptr<engine::BertEncoder> encoder_;  // worker thread only
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace lumen::server
