#pragma once
// BlockingEmbedder: a HashingEmbedder whose Embed() blocks, for texts that
// contain a marker, until the test releases it. Lets a test hold an ingest
// inside its embedding step and check what else still runs meanwhile.

#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "tests/retrieval/hashing_embedder.h"

namespace lumen::testing {

class BlockingEmbedder : public HashingEmbedder {
 public:
  explicit BlockingEmbedder(std::string marker, int dim = 64)
      : HashingEmbedder(dim),
        marker_(std::move(marker)),
        released_(release_.get_future().share()) {}
  ~BlockingEmbedder() override { Release(); }

  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) override {
    bool blocks = false;
    for (const std::string& t : texts) {
      if (t.find(marker_) != std::string::npos) blocks = true;
    }
    if (blocks) {
      {
        std::lock_guard lock(mu_);
        if (!entered_signalled_) {
          entered_signalled_ = true;
          entered_.set_value();
        }
      }
      released_.wait();
    }
    return HashingEmbedder::Embed(texts);
  }

  // Blocks until an Embed() call with the marker has started.
  void WaitUntilBlocked() { entered_future_.wait(); }
  // Lets every blocked and future Embed() call run. Idempotent.
  void Release() {
    std::lock_guard lock(mu_);
    if (!released_signalled_) {
      released_signalled_ = true;
      release_.set_value();
    }
  }

 private:
  std::string marker_;
  std::mutex mu_;
  std::promise<void> entered_;
  std::future<void> entered_future_ = entered_.get_future();
  bool entered_signalled_ = false;
  std::promise<void> release_;
  std::shared_future<void> released_;
  bool released_signalled_ = false;
};

}  // namespace lumen::testing
