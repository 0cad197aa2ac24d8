#include "server/embedding_worker.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/openmp_wait.h"

namespace lumen::server {

namespace {

// Tokens per encoder pass: GEMMs near peak, and a bound on how long a
// query waits behind an ingest (one pass).
constexpr int64_t kPassTokens = 4096;

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
  const std::vector<int> teams = LaneTeams(threads);
  // Loading warms oneDNN primitives (parallel regions): on a transient
  // thread, so that no team stays on the caller, with the smallest lane's
  // team (a primitive keeps the team size it was created with for parts of
  // its work, and would grow a smaller lane's team to it).
  absl::StatusOr<std::unique_ptr<engine::BertEncoder>> enc;
  RunInTransientOpenMpTeam(teams.back(),
                           [&] { enc = engine::BertEncoder::Load(*w->file_); });
  if (!enc.ok()) return enc.status();
  w->encoder_ = std::move(*enc);
  auto name = w->file_->GetString("general.name");
  w->model_.name = name.ok() && !name->empty()
                       ? std::string(*name)
                       : path.substr(path.rfind('/') + 1);
  w->model_.dim = w->encoder_->dim();
  w->model_.checksum = WeightsChecksum(*w->file_);
  for (const int team : teams) {
    w->lanes_.emplace_back([raw = w.get(), team] { raw->Lane(team); });
  }
  return w;
}

std::vector<int> EmbeddingWorker::LaneTeams(int threads) {
  const int cores =
      threads > 0
          ? threads
          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int lanes = std::min(cores, 4);
  std::vector<int> teams;
  for (int i = 0; i < lanes; ++i)
    teams.push_back(cores / lanes + (i < cores % lanes ? 1 : 0));
  return teams;  // largest first
}

EmbeddingWorker::~EmbeddingWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& lane : lanes_) lane.join();
  // No lane runs any more: nothing else touches the jobs.
  std::lock_guard<std::mutex> lock(mu_);
  while (!queries_.empty() || !bulk_.empty()) {
    Complete(queries_.empty() ? bulk_.front() : queries_.front(),
             absl::UnavailableError("embedding worker is stopping"));
  }
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
  job.embeddings.resize(job.sequences.size());
  auto result = job.result.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_)
      return absl::UnavailableError("embedding worker is stopping");
    (job.sequences.size() == 1 ? queries_ : bulk_).push_back(&job);
  }
  cv_.notify_one();
  return result.get();
}

std::vector<EmbeddingWorker::Item> EmbeddingWorker::NextPass() {
  std::vector<Item> items;
  int64_t tokens = 0;
  for (std::deque<Job*>* queue : {&queries_, &bulk_}) {
    for (Job* job : *queue) {
      while (job->next < job->sequences.size()) {
        const int64_t n = job->sequences[job->next].size();
        if (!items.empty() && tokens + n > kPassTokens) return items;
        items.push_back({job, job->next++});
        tokens += n;
      }
    }
  }
  return items;
}

void EmbeddingWorker::Complete(Job* job, absl::Status error) {
  for (std::deque<Job*>* queue : {&queries_, &bulk_}) {
    auto it = std::find(queue->begin(), queue->end(), job);
    if (it != queue->end()) queue->erase(it);
  }
  if (error.ok()) {
    job->result.set_value(std::move(job->embeddings));
  } else {
    job->result.set_value(error);
  }
}

void EmbeddingWorker::Lane(int team) {
  // The team belongs to this thread: omp_set_num_threads applies to the
  // calling thread only.
  omp_set_num_threads(team);
  engine::BertEncoder::Workspace workspace;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    // A job with sequences not yet taken by a lane.
    auto pending = [&] {
      for (const std::deque<Job*>* queue : {&queries_, &bulk_}) {
        for (const Job* job : *queue) {
          if (job->next < job->sequences.size()) return true;
        }
      }
      return false;
    };
    cv_.wait(lock, [&] { return stopping_ || pending(); });
    if (stopping_) return;
    const std::vector<Item> items = NextPass();
    std::vector<std::vector<int32_t>> sequences;  // the pass, in item order
    for (const Item& item : items)
      sequences.push_back(item.job->sequences[item.index]);
    // The encoder runs unlocked: callers queue and other lanes take passes
    // meanwhile.
    lock.unlock();
    auto embeddings = encoder_->Embed(sequences, &workspace);
    lock.lock();
    std::vector<Job*> finished;
    for (size_t i = 0; i < items.size(); ++i) {
      Job* job = items[i].job;
      if (embeddings.ok()) {
        job->embeddings[items[i].index] = std::move((*embeddings)[i]);
        if (++job->done == job->sequences.size()) finished.push_back(job);
      } else if (std::find(finished.begin(), finished.end(), job) ==
                 finished.end()) {
        finished.push_back(job);
      }
    }
    for (Job* job : finished) {
      Complete(job, embeddings.ok() ? absl::OkStatus() : embeddings.status());
    }
  }
}

}  // namespace lumen::server
