#pragma once
// VectorCatalog: the HNSW index of every vector collection, derived from the
// backend's change log. An index is attached once (loaded from its saved file
// when that was built for the same layout, else rebuilt from a snapshot of
// the stored embeddings), then kept current by applying the change log in
// sequence order. Saved with the sequence number it covers, so a restart only
// replays what it missed. Backend-independent: SQLite and PostgreSQL stores
// both use it.
//
// Threads: every method is thread-safe. Each collection has its own locks: a
// catch-up lock (one catch-up, rebuild or save at a time; held across the
// change-log reads) and a short one around the index pointer, so searches
// never wait for a catch-up's I/O and collections never wait for each other.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "retrieval/change_log.h"
#include "retrieval/vector_index.h"

namespace lumen::retrieval {

// What a collection's index is built for. A saved index of another layout
// (other dimension, HNSW parameters or embedding model) is rebuilt.
struct IndexLayout {
  int dim = 0;
  HnswOptions hnsw;
  std::string model;  // identity of the embedding model

  // One line naming every field (saved next to the index).
  std::string Fingerprint() const;
};

class VectorCatalog {
 public:
  // `dir`: where indexes are saved (collection-<id>.hnsw); empty: never
  // saved. `log` must outlive the catalog.
  VectorCatalog(std::string dir, ChangeLog* log);
  ~VectorCatalog();

  // Makes sure `collection` has an index of `layout` (attaching, or
  // replacing one of another layout) that has applied the change log up to
  // a point at least as recent as this call. Cheap when already attached.
  absl::Status Attach(int64_t collection, const IndexLayout& layout);
  // Applies the collection's changes committed so far; no-op for a
  // collection that is not attached.
  absl::Status CatchUp(int64_t collection);
  // CatchUp for every attached collection.
  absl::Status CatchUpAll();
  bool attached(int64_t collection) const;
  // Forgets the collection and deletes its saved files.
  void Drop(int64_t collection);
  // Drops every attached collection not in `keep`, and saved files of
  // collections not in `keep`.
  void Retain(const std::set<int64_t>& keep);

  // The k nearest chunks; NotFound when the collection is not attached.
  absl::StatusOr<std::vector<VectorHit>> Search(int64_t collection,
                                                const float* query,
                                                int k) const;
  // Tombstoned vectors in the collection's graph (0 when not attached).
  size_t Tombstones(int64_t collection) const;
  // The last applied sequence number (-1 when not attached).
  int64_t AppliedSeq(int64_t collection) const;
  // Waits until the collection's index has applied `seq` (true) or the
  // deadline passes (false). For replicas: a write acknowledged elsewhere
  // at `seq` is searchable here once this returns true.
  bool AwaitApplied(int64_t collection, int64_t seq,
                    std::chrono::steady_clock::time_point deadline) const;
  // Saves every index with the sequence number it covers.
  absl::Status SaveAll();

 private:
  struct Entry {
    explicit Entry(const IndexLayout& l) : layout(l) {}
    const IndexLayout layout;
    // One catch-up, rebuild or save of this collection at a time; held
    // across change-log reads (never by searches).
    absl::Mutex catch_up_mu;
    bool needs_rebuild ABSL_GUARDED_BY(catch_up_mu) = false;
    // The index pointer and what it has applied; held briefly.
    mutable absl::Mutex mu ABSL_ACQUIRED_AFTER(catch_up_mu);
    std::shared_ptr<VectorIndex> index ABSL_GUARDED_BY(mu);
    int64_t applied_seq ABSL_GUARDED_BY(mu) = 0;
  };

  std::shared_ptr<Entry> Find(int64_t collection) const;
  // The entry's index and applied sequence number, read together.
  static std::pair<std::shared_ptr<VectorIndex>, int64_t> Snapshot(
      const Entry& entry);
  std::string IndexPath(int64_t collection) const;
  absl::Status CatchUpLocked(int64_t collection, Entry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.catch_up_mu);
  // A fresh index from a snapshot of the embeddings plus the changes after
  // it.
  absl::Status RebuildLocked(int64_t collection, Entry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.catch_up_mu);
  void RemoveFiles(int64_t collection) const;
  // Tells AwaitApplied that some sequence number moved.
  void NotifyApplied() const;

  const std::string dir_;
  ChangeLog* const log_;
  // AwaitApplied waits on this; taken before (never while holding) the
  // map's and the entries' locks.
  mutable absl::Mutex applied_mu_;
  mutable absl::CondVar applied_cv_;
  mutable absl::Mutex mu_;  // the map only
  std::map<int64_t, std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumen::retrieval
