#pragma once
// A deterministic stand-in embedding model for tests: the sum of pseudo-random
// vectors of the text's words (and CJK characters), normalized. Texts that
// share words get similar vectors, which is all the store's tests need.
// Thread-safe.

#include <atomic>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "base/unicode.h"
#include "retrieval/chunker.h"
#include "retrieval/knowledge_store.h"

namespace lumen::testing {

class HashingEmbedder : public retrieval::Embedder {
 public:
  // `name` is the model identity it reports (tests switch "models").
  explicit HashingEmbedder(int dim = 64, std::string name = "hashing")
      : dim_(dim), name_(std::move(name)) {}
  int dim() const override { return dim_; }
  retrieval::EmbeddingModelInfo model() const override {
    return {name_, dim_, "0000"};
  }
  int CountTokens(absl::string_view text) const override {
    return retrieval::EstimateTokens(text);
  }
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) override {
    ++calls_;
    std::vector<std::vector<float>> out;
    for (const std::string& t : texts) {
      std::vector<float> v(dim_, 0.0f);
      for (const std::string& w : Words(t)) {
        std::mt19937 rng(std::hash<std::string>()(w));
        std::normal_distribution<float> n;
        for (float& x : v) x += n(rng);
      }
      double ss = 0;
      for (float x : v) ss += x * x;
      for (float& x : v) x /= ss > 0 ? std::sqrt(ss) : 1.0;
      out.push_back(std::move(v));
    }
    return out;
  }
  int calls() const { return calls_.load(); }

 private:
  static std::vector<std::string> Words(const std::string& text) {
    std::vector<std::string> words;
    std::string cur;
    for (uint32_t cp : DecodeUtf8(text)) {
      if (cp >= 0x4E00 && cp <= 0x9FFF) {
        if (!cur.empty()) words.push_back(cur), cur.clear();
        std::string c;
        AppendUtf8(cp, &c);
        words.push_back(c);
      } else if (cp < 128 && isalnum(static_cast<int>(cp))) {
        cur += static_cast<char>(
            absl::ascii_tolower(static_cast<unsigned char>(cp)));
      } else if (!cur.empty()) {
        words.push_back(cur);
        cur.clear();
      }
    }
    if (!cur.empty()) words.push_back(cur);
    return words;
  }
  int dim_;
  std::string name_;
  std::atomic<int> calls_{0};
};

}  // namespace lumen::testing
