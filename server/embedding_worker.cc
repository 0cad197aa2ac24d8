#include "server/embedding_worker.h"

namespace lumen::server {

absl::StatusOr<std::unique_ptr<EmbeddingWorker>> EmbeddingWorker::Load(
    const std::string& path) {
  std::unique_ptr<EmbeddingWorker> w(new EmbeddingWorker());
  w->path_ = path;
  auto file = engine::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  w->file_ = std::move(*file);
  auto tok = engine::Tokenizer::FromGguf(*w->file_);
  if (!tok.ok()) return tok.status();
  w->tokenizer_ = std::move(*tok);
  auto enc = engine::BertEncoder::Load(*w->file_);
  if (!enc.ok()) return enc.status();
  w->encoder_ = std::move(*enc);
  w->thread_ = std::thread([raw = w.get()] { raw->Loop(); });
  return w;
}

EmbeddingWorker::~EmbeddingWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int EmbeddingWorker::CountTokens(absl::string_view text) const {
  return static_cast<int>(
      tokenizer_->Encode(text, /*add_special=*/true, false).size());
}

absl::StatusOr<std::vector<std::vector<float>>> EmbeddingWorker::Embed(
    const std::vector<std::string>& texts) {
  Job job{texts, {}};
  auto result = job.done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_)
      return absl::UnavailableError("embedding worker is stopping");
    jobs_.push_back(&job);
  }
  cv_.notify_one();
  return result.get();
}

void EmbeddingWorker::Loop() {
  while (true) {
    Job* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping
      job = jobs_.front();
      jobs_.pop_front();
    }
    std::vector<std::vector<int32_t>> seqs;
    for (const std::string& t : job->texts) {
      std::vector<int32_t> ids =
          tokenizer_->Encode(t, /*add_special=*/true, false);
      if (static_cast<int>(ids.size()) > encoder_->max_tokens()) {
        ids.resize(
            encoder_
                ->max_tokens());  // passages longer than the model sees are cut
      }
      seqs.push_back(std::move(ids));
    }
    job->done.set_value(encoder_->Embed(seqs));
  }
}

}  // namespace lumen::server
