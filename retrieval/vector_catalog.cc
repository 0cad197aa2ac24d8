#include "retrieval/vector_catalog.h"

#include <dirent.h>

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"

namespace lumen::retrieval {

namespace {

// Changes read per round trip while catching up.
constexpr int kChangeBatch = 4096;

// A graph is rebuilt once tombstones are at least this many and at least
// half of the live vectors: searches then waste much of their effort on them.
constexpr size_t kMinTombstonesToRebuild = 256;

}  // namespace

std::string IndexLayout::Fingerprint() const {
  return absl::StrCat(
      "dim=", dim, " m=", hnsw.m, " ef_construction=", hnsw.ef_construction,
      " metric=", hnsw.cosine ? "cosine" : "ip", " model=", model);
}

VectorCatalog::VectorCatalog(std::string dir, ChangeLog* log)
    : dir_(std::move(dir)), log_(log) {}

VectorCatalog::~VectorCatalog() = default;

std::string VectorCatalog::IndexPath(int64_t collection) const {
  return absl::StrCat(dir_, "/collection-", collection, ".hnsw");
}

void VectorCatalog::RemoveFiles(int64_t collection) const {
  if (dir_.empty()) return;
  const std::string path = IndexPath(collection);
  std::remove(path.c_str());
  std::remove((path + ".seq").c_str());
}

std::pair<std::shared_ptr<VectorIndex>, int64_t> VectorCatalog::Snapshot(
    const Entry& entry) {
  absl::ReaderMutexLock lock(&entry.mu);
  return {entry.index, entry.applied_seq};
}

std::shared_ptr<VectorCatalog::Entry> VectorCatalog::Find(
    int64_t collection) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(collection);
  return it == entries_.end() ? nullptr : it->second;
}

bool VectorCatalog::attached(int64_t collection) const {
  return Find(collection) != nullptr;
}

absl::Status VectorCatalog::Attach(int64_t collection,
                                   const IndexLayout& layout) {
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(collection);
    if (it != entries_.end() &&
        it->second->layout.Fingerprint() == layout.Fingerprint()) {
      entry = it->second;
    } else {
      // New, or its layout changed (re-embedded with another model): a
      // fresh entry replaces the old one, which searches in flight may
      // still use.
      entry = std::make_shared<Entry>(layout);
      entries_[collection] = entry;
    }
  }
  if (Snapshot(*entry).first != nullptr) return absl::OkStatus();
  // Being built by another thread (wait for it), or never built, or its
  // build failed (build it here).
  absl::MutexLock catch_up(&entry->catch_up_mu);
  if (Snapshot(*entry).first != nullptr) return absl::OkStatus();
  absl::StatusOr<SavedIndex> saved =
      dir_.empty() ? absl::NotFoundError("no index directory")
                   : VectorIndex::Load(IndexPath(collection), layout.dim,
                                       layout.hnsw, layout.Fingerprint());
  if (saved.ok()) {
    {
      absl::MutexLock lock(&entry->mu);
      entry->index = std::move(saved->index);
      entry->applied_seq = saved->seq;
    }
    return CatchUpLocked(collection, *entry);
  }
  // No usable saved index: build one from the stored embeddings.
  entry->needs_rebuild = true;
  return RebuildLocked(collection, *entry);
}

absl::Status VectorCatalog::RebuildLocked(int64_t collection, Entry& entry) {
  const IndexLayout& layout = entry.layout;
  size_t capacity = 1024;
  if (std::shared_ptr<VectorIndex> old = Snapshot(entry).first) {
    capacity = std::max(capacity, old->size());
  }
  std::shared_ptr<VectorIndex> fresh =
      VectorIndex::Create(layout.dim, layout.hnsw, capacity);
  ASSIGN_OR_RETURN(
      int64_t as_of,
      log_->ScanEmbeddings(collection,
                           [&](int64_t chunk, absl::Span<const float> v) {
                             // Vectors of another dimension belong to a model
                             // being replaced.
                             if (static_cast<int>(v.size()) == layout.dim)
                               fresh->Add(chunk, v.data());
                           }));
  {
    absl::MutexLock lock(&entry.mu);
    entry.index = std::move(fresh);
    entry.applied_seq = as_of;
  }
  NotifyApplied();
  entry.needs_rebuild = false;
  return CatchUpLocked(collection, entry);
}

absl::Status VectorCatalog::CatchUpLocked(int64_t collection, Entry& entry) {
  auto [index, seq] = Snapshot(entry);
  if (entry.needs_rebuild || index == nullptr) {
    return RebuildLocked(collection, entry);
  }
  while (true) {
    // The change-log read is I/O: only this collection's catch-up lock is
    // held, searches go on.
    ASSIGN_OR_RETURN(std::vector<ChangeRecord> changes,
                     log_->ReadChanges(collection, seq, kChangeBatch));
    for (const ChangeRecord& c : changes) {
      if (c.removed) {
        index->Remove(c.chunk_id);
      } else if (static_cast<int>(c.embedding.size()) == entry.layout.dim) {
        index->Add(c.chunk_id, c.embedding.data());
      }
      seq = c.seq;
    }
    {
      absl::MutexLock lock(&entry.mu);
      entry.applied_seq = seq;
    }
    NotifyApplied();
    if (static_cast<int>(changes.size()) < kChangeBatch) break;
  }
  const size_t tombstones = index->deleted();
  if (tombstones >= kMinTombstonesToRebuild &&
      tombstones >= index->size() / 2) {
    return RebuildLocked(collection, entry);
  }
  return absl::OkStatus();
}

absl::Status VectorCatalog::CatchUp(int64_t collection) {
  std::shared_ptr<Entry> entry = Find(collection);
  if (entry == nullptr) return absl::OkStatus();
  absl::MutexLock catch_up(&entry->catch_up_mu);
  return CatchUpLocked(collection, *entry);
}

absl::Status VectorCatalog::CatchUpAll() {
  std::vector<int64_t> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, entry] : entries_) ids.push_back(id);
  }
  absl::Status status;
  for (int64_t id : ids) status.Update(CatchUp(id));
  return status;
}

void VectorCatalog::Drop(int64_t collection) {
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(collection);
    if (it != entries_.end()) {
      entry = std::move(it->second);
      entries_.erase(it);
    }
  }
  // Waits for a catch-up or save in progress before deleting the files.
  if (entry) absl::MutexLock catch_up(&entry->catch_up_mu);
  RemoveFiles(collection);
}

void VectorCatalog::Retain(const std::set<int64_t>& keep) {
  std::vector<int64_t> drop;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, entry] : entries_) {
      if (!keep.count(id)) drop.push_back(id);
    }
  }
  for (int64_t id : drop) Drop(id);
  if (dir_.empty()) return;
  // Files of collections deleted while this process was not running.
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) return;
  std::vector<int64_t> stale;
  while (dirent* e = readdir(d)) {
    absl::string_view name = e->d_name;
    if (!absl::ConsumePrefix(&name, "collection-")) continue;
    const size_t dot = name.find('.');
    int64_t id;
    if (dot == absl::string_view::npos ||
        !absl::SimpleAtoi(name.substr(0, dot), &id)) {
      continue;
    }
    if (!keep.count(id) && !attached(id)) stale.push_back(id);
  }
  closedir(d);
  for (int64_t id : stale) RemoveFiles(id);
}

absl::StatusOr<std::vector<VectorHit>> VectorCatalog::Search(int64_t collection,
                                                             const float* query,
                                                             int k) const {
  std::shared_ptr<Entry> entry = Find(collection);
  if (entry == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("collection ", collection, " has no vector index"));
  }
  std::shared_ptr<VectorIndex> index = Snapshot(*entry).first;
  if (index == nullptr) return std::vector<VectorHit>{};
  return index->Search(query, k);
}

size_t VectorCatalog::Tombstones(int64_t collection) const {
  std::shared_ptr<Entry> entry = Find(collection);
  if (entry == nullptr) return 0;
  std::shared_ptr<VectorIndex> index = Snapshot(*entry).first;
  return index ? index->deleted() : 0;
}

void VectorCatalog::NotifyApplied() const {
  // Taking the mutex orders the signal after a waiter's check.
  absl::MutexLock lock(&applied_mu_);
  applied_cv_.SignalAll();
}

bool VectorCatalog::AwaitApplied(
    int64_t collection, int64_t seq,
    std::chrono::steady_clock::time_point deadline) const {
  const absl::Time until =
      absl::Now() +
      absl::FromChrono(deadline - std::chrono::steady_clock::now());
  absl::MutexLock lock(&applied_mu_);
  while (AppliedSeq(collection) < seq) {
    if (applied_cv_.WaitWithDeadline(&applied_mu_, until)) {
      return AppliedSeq(collection) >= seq;  // timed out
    }
  }
  return true;
}

int64_t VectorCatalog::AppliedSeq(int64_t collection) const {
  std::shared_ptr<Entry> entry = Find(collection);
  if (entry == nullptr) return -1;
  return Snapshot(*entry).second;
}

absl::Status VectorCatalog::SaveAll() {
  if (dir_.empty()) return absl::OkStatus();
  std::vector<std::pair<int64_t, std::shared_ptr<Entry>>> entries;
  {
    absl::MutexLock lock(&mu_);
    entries.assign(entries_.begin(), entries_.end());
  }
  absl::Status status;
  for (auto& [id, entry] : entries) {
    // No change is applied while the index is written: the saved sequence
    // number is exactly what the file holds.
    absl::MutexLock catch_up(&entry->catch_up_mu);
    auto [index, seq] = Snapshot(*entry);
    if (index == nullptr || entry->needs_rebuild) continue;
    status.Update(index->Save(IndexPath(id), seq, entry->layout.Fingerprint()));
  }
  return status;
}

}  // namespace lumen::retrieval
