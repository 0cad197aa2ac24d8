#include "retrieval/vector_index.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "hnswlib/hnswlib.h"

namespace lumen::retrieval {

void Normalize(float* v, int dim) {
  double ss = 0;
  for (int i = 0; i < dim; ++i) ss += static_cast<double>(v[i]) * v[i];
  if (ss <= 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(ss));
  for (int i = 0; i < dim; ++i) v[i] *= inv;
}

VectorIndex::VectorIndex(int dim, const HnswOptions& options)
    : dim_(dim),
      options_(options),
      space_(std::make_unique<hnswlib::InnerProductSpace>(dim)) {}

VectorIndex::~VectorIndex() = default;

std::unique_ptr<VectorIndex> VectorIndex::Create(int dim,
                                                 const HnswOptions& options,
                                                 size_t capacity) {
  std::unique_ptr<VectorIndex> v(new VectorIndex(dim, options));
  v->index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      v->space_.get(), capacity, options.m, options.ef_construction);
  v->index_->setEf(options.ef_search);
  return v;
}

absl::StatusOr<std::pair<std::unique_ptr<VectorIndex>, int64_t>>
VectorIndex::Load(const std::string& path, int dim,
                  const HnswOptions& options) {
  std::ifstream seq_in(path + ".seq");
  int64_t seq = -1;
  if (!(seq_in >> seq))
    return absl::NotFoundError(absl::StrCat("no index at ", path));
  std::unique_ptr<VectorIndex> v(new VectorIndex(dim, options));
  try {
    v->index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        v->space_.get(), path);
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat("cannot load index ", path, ": ", e.what()));
  }
  v->index_->setEf(options.ef_search);
  return std::make_pair(std::move(v), seq);
}

void VectorIndex::Add(int64_t label, const float* vec) {
  std::vector<float> v(vec, vec + dim_);
  if (options_.cosine) Normalize(v.data(), dim_);
  std::unique_lock lock(mu_);
  if (index_->cur_element_count >= index_->max_elements_) {
    index_->resizeIndex(std::max<size_t>(1024, index_->max_elements_ * 2));
  }
  // A label seen before (an update) is replaced in place by hnswlib.
  if (index_->label_lookup_.count(label)) {
    try {
      index_->unmarkDelete(label);
      --deleted_;
    } catch (const std::exception&) {
    }
  }
  index_->addPoint(v.data(), static_cast<hnswlib::labeltype>(label));
}

void VectorIndex::Remove(int64_t label) {
  std::unique_lock lock(mu_);
  try {
    index_->markDelete(static_cast<hnswlib::labeltype>(label));
    ++deleted_;
  } catch (const std::exception&) {
    // Unknown or already deleted: nothing to do.
  }
}

std::vector<VectorHit> VectorIndex::Search(const float* query, int k) const {
  std::vector<float> q(query, query + dim_);
  if (options_.cosine) Normalize(q.data(), dim_);
  std::shared_lock lock(mu_);
  std::vector<VectorHit> out;
  if (index_->cur_element_count == 0 || k <= 0) return out;
  auto result = index_->searchKnn(q.data(), k);
  while (!result.empty()) {
    out.push_back(
        {static_cast<int64_t>(result.top().second), 1.0f - result.top().first});
    result.pop();
  }
  std::reverse(out.begin(), out.end());
  return out;
}

absl::Status VectorIndex::Save(const std::string& path, int64_t seq) const {
  std::shared_lock lock(mu_);
  const std::string tmp = path + ".tmp";
  try {
    index_->saveIndex(tmp);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot save index ", path, ": ", e.what()));
  }
  {
    std::ofstream out(path + ".seq.tmp");
    out << seq << "\n";
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0 ||
      std::rename((path + ".seq.tmp").c_str(), (path + ".seq").c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot rename index files at ", path));
  }
  return absl::OkStatus();
}

size_t VectorIndex::size() const {
  std::shared_lock lock(mu_);
  return index_->cur_element_count - deleted_;
}

}  // namespace lumen::retrieval
