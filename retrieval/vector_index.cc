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
      v->space_.get(), std::max<size_t>(capacity, 1), options.m,
      options.ef_construction);
  v->index_->setEf(options.ef_search);
  return v;
}

absl::StatusOr<SavedIndex> VectorIndex::Load(const std::string& path, int dim,
                                             const HnswOptions& options,
                                             const std::string& tag) {
  std::ifstream seq_in(path + ".seq");
  int64_t seq = -1;
  if (!(seq_in >> seq))
    return absl::NotFoundError(absl::StrCat("no index at ", path));
  std::string saved_tag;
  seq_in.ignore(1);
  std::getline(seq_in, saved_tag);
  if (saved_tag != tag) {
    return absl::FailedPreconditionError(absl::StrCat(
        "index ", path, " was built for '", saved_tag, "', not '", tag, "'"));
  }
  std::unique_ptr<VectorIndex> v(new VectorIndex(dim, options));
  try {
    v->index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        v->space_.get(), path);
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat("cannot load index ", path, ": ", e.what()));
  }
  // hnswlib 0.6.2's loadIndex adds the tombstones it finds to num_deleted_
  // without zeroing it first (garbage from the heap): count them again.
  v->index_->num_deleted_ = 0;
  for (size_t i = 0; i < v->index_->cur_element_count; ++i) {
    if (v->index_->isMarkedDeleted(static_cast<hnswlib::tableint>(i))) {
      ++v->index_->num_deleted_;
    }
  }
  v->index_->setEf(options.ef_search);
  return SavedIndex{std::move(v), seq};
}

void VectorIndex::Add(int64_t label, const float* vec) {
  std::vector<float> v(vec, vec + dim_);  // [dim]
  if (options_.cosine) Normalize(v.data(), dim_);
  const auto hl = static_cast<hnswlib::labeltype>(label);
  std::unique_lock lock(mu_);
  if (index_->cur_element_count >= index_->max_elements_) {
    index_->resizeIndex(std::max<size_t>(1024, index_->max_elements_ * 2));
  }
  // A label seen before (an update, or re-added after a removal) is replaced
  // in place by hnswlib; a tombstone is lifted first.
  auto it = index_->label_lookup_.find(hl);
  if (it != index_->label_lookup_.end() &&
      index_->isMarkedDeleted(it->second)) {
    index_->unmarkDeletedInternal(it->second);
  }
  index_->addPoint(v.data(), hl);
}

void VectorIndex::Remove(int64_t label) {
  std::unique_lock lock(mu_);
  auto it = index_->label_lookup_.find(static_cast<hnswlib::labeltype>(label));
  if (it == index_->label_lookup_.end() ||
      index_->isMarkedDeleted(it->second)) {
    return;
  }
  index_->markDeletedInternal(it->second);
}

std::vector<VectorHit> VectorIndex::Search(const float* query, int k) const {
  std::vector<float> q(query, query + dim_);  // [dim]
  if (options_.cosine) Normalize(q.data(), dim_);
  std::shared_lock lock(mu_);
  std::vector<VectorHit> out;
  if (index_->cur_element_count == index_->num_deleted_ || k <= 0) return out;
  auto result = index_->searchKnn(q.data(), k);
  while (!result.empty()) {
    out.push_back(
        {static_cast<int64_t>(result.top().second), 1.0f - result.top().first});
    result.pop();
  }
  std::reverse(out.begin(), out.end());
  return out;
}

absl::Status VectorIndex::Save(const std::string& path, int64_t seq,
                               const std::string& tag) const {
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
    out << seq << "\n" << tag << "\n";
    if (!out.flush()) {
      return absl::InternalError(absl::StrCat("cannot write ", path, ".seq"));
    }
  }
  // Index first: a crash between the renames leaves a newer index with an
  // older sequence number, and replaying changes is idempotent.
  if (std::rename(tmp.c_str(), path.c_str()) != 0 ||
      std::rename((path + ".seq.tmp").c_str(), (path + ".seq").c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot rename index files at ", path));
  }
  return absl::OkStatus();
}

size_t VectorIndex::size() const {
  std::shared_lock lock(mu_);
  return index_->cur_element_count - index_->num_deleted_;
}

size_t VectorIndex::deleted() const {
  std::shared_lock lock(mu_);
  return index_->num_deleted_;
}

}  // namespace lumen::retrieval
