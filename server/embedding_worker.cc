#include "server/embedding_worker.h"

#include <omp.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lumen::server {

namespace {

// Tokens taken into one batch of jobs (the encoder splits it in passes).
constexpr int64_t kBatchTokens = 16384;

// FNV-1a over 8-byte words of the tensor data (and the tail bytes): which
// weights these are, cheaply (~0.05 s for 100 MB).
std::string WeightsChecksum(const engine::GgufFile& file) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const engine::GgufTensorInfo& t : file.tensors()) {
    const std::span<const uint8_t> data = file.TensorData(t);
    size_t i = 0;
    for (; i + 8 <= data.size(); i += 8) {
      uint64_t word;
      std::memcpy(&word, data.data() + i, 8);
      h = (h ^ word) * 0x100000001b3ull;
    }
    for (; i < data.size(); ++i) h = (h ^ data[i]) * 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EmbeddingWorker>> EmbeddingWorker::Load(
    const std::string& path, int threads) {
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
  auto name = w->file_->GetString("general.name");
  w->model_.name = name.ok() && !name->empty()
                       ? std::string(*name)
                       : path.substr(path.rfind('/') + 1);
  w->model_.dim = w->encoder_->dim();
  w->model_.checksum = WeightsChecksum(*w->file_);
  w->thread_ = std::thread([raw = w.get(), threads] { raw->Loop(threads); });
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
  Job job;
  // Tokenizing is the caller's work: concurrent callers do it in parallel.
  for (const std::string& t : texts) {
    std::vector<int32_t> ids =
        tokenizer_->Encode(t, /*add_special=*/true, false);
    // Passages longer than the model sees are cut.
    if (static_cast<int>(ids.size()) > encoder_->max_tokens())
      ids.resize(encoder_->max_tokens());
    job.sequences.push_back(std::move(ids));
  }
  if (job.sequences.empty()) return std::vector<std::vector<float>>{};
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

void EmbeddingWorker::Loop(int threads) {
  // The team belongs to this thread: omp_set_num_threads applies to the
  // calling thread only.
  if (threads > 0) omp_set_num_threads(threads);
  while (true) {
    std::vector<Job*> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) {
        for (Job* job : jobs_) {
          job->done.set_value(
              absl::UnavailableError("embedding worker is stopping"));
        }
        jobs_.clear();
        return;
      }
      // Everything queued meanwhile, up to the token budget (at least one
      // job).
      int64_t tokens = 0;
      while (!jobs_.empty()) {
        int64_t job_tokens = 0;
        for (const auto& s : jobs_.front()->sequences) job_tokens += s.size();
        if (!batch.empty() && tokens + job_tokens > kBatchTokens) break;
        tokens += job_tokens;
        batch.push_back(jobs_.front());
        jobs_.pop_front();
      }
    }
    std::vector<std::vector<int32_t>> sequences;
    for (Job* job : batch) {
      sequences.insert(sequences.end(), job->sequences.begin(),
                       job->sequences.end());
    }
    auto embeddings = encoder_->Embed(sequences);
    if (!embeddings.ok() && batch.size() > 1) {
      // One bad job must not fail the others: each alone then.
      for (Job* job : batch)
        job->done.set_value(encoder_->Embed(job->sequences));
      continue;
    }
    size_t next = 0;
    for (Job* job : batch) {
      if (!embeddings.ok()) {
        job->done.set_value(embeddings.status());
        continue;
      }
      const size_t n = job->sequences.size();
      std::vector<std::vector<float>> mine(
          std::make_move_iterator(embeddings->begin() + next),
          std::make_move_iterator(embeddings->begin() + next + n));
      next += n;
      job->done.set_value(std::move(mine));
    }
  }
}

}  // namespace lumen::server
