// `lumen collection create|list|delete|reembed`, `lumen ingest`,
// `lumen search`.

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lumen/v1/knowledge.grpc.pb.h"
#include "tools/lumen/client_common.h"
#include "tools/lumen/commands.h"

namespace lumen::tools {

namespace {

// .txt and .md files under `path` (recursively for directories).
void CollectFiles(const std::string& path, std::vector<std::string>* out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR* d = opendir(path.c_str());
    if (!d) return;
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) CollectFiles(path + "/" + n, out);
  } else if (absl::EndsWith(path, ".txt") || absl::EndsWith(path, ".md")) {
    out->push_back(path);
  }
}

// "[#####.....] " for done of total.
std::string Bar(uint64_t done, uint64_t total) {
  constexpr int kWidth = 30;
  const int filled =
      total == 0 ? kWidth
                 : static_cast<int>(kWidth * std::min(done, total) / total);
  std::string bar = "[";
  bar.append(filled, '#');
  bar.append(kWidth - filled, '.');
  bar += ']';
  return bar;
}

}  // namespace

int ClientCollection(const Args& args) {
  ClientFlags client;
  std::vector<std::string> shared;
  std::string owner, metric;
  int64_t m = 0, ef_construction = 0, ef_search = 0;
  FlagSet flags(
      "lumen collection create NAME [--share TENANT]... | list | delete NAME | "
      "reembed NAME");
  client.Register(&flags);
  flags.Repeated("share", &shared, "tenant given read access (create)");
  flags.String("owner", &owner, "owning tenant (admins only; default: yours)");
  flags.Int("m", &m, "HNSW M (create)");
  flags.String("metric", &metric, "cosine or ip (create)");
  flags.Int("ef-construction", &ef_construction,
            "HNSW ef_construction (create)");
  flags.Int("ef-search", &ef_search, "HNSW ef_search (create)");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  const auto& pos = flags.positional();
  if (pos.empty()) return Fail(flags.Help(), 2);
  auto stub = lumen::v1::Knowledge::NewStub(client.Channel());
  auto ctx = client.Context();
  if (pos[0] == "create" && pos.size() == 2) {
    lumen::v1::CreateCollectionRequest req;
    req.set_name(pos[1]);
    req.set_owner(owner);
    for (const auto& t : shared) req.add_shared_with(t);
    req.mutable_hnsw()->set_m(m);
    req.mutable_hnsw()->set_ef_construction(ef_construction);
    req.mutable_hnsw()->set_ef_search(ef_search);
    req.mutable_hnsw()->set_metric(metric);
    lumen::v1::CollectionInfo info;
    grpc::Status st = stub->CreateCollection(ctx.get(), req, &info);
    if (!st.ok()) return FailRpc(st);
    std::printf("created %s (owner %s, %s)\n", info.name().c_str(),
                info.owner().c_str(),
                info.vector_search() ? "vector + keyword search"
                                     : "keyword search only");
    return 0;
  }
  if (pos[0] == "list") {
    lumen::v1::ListCollectionsResponse resp;
    grpc::Status st = stub->ListCollections(
        ctx.get(), lumen::v1::ListCollectionsRequest(), &resp);
    if (!st.ok()) return FailRpc(st);
    std::printf("%-24s %-12s %10s %10s  %-14s %s\n", "name", "owner",
                "documents", "chunks", "search", "embedding model");
    for (const auto& c : resp.collections()) {
      std::printf("%-24s %-12s %10llu %10llu  %-14s %s%s\n", c.name().c_str(),
                  c.owner().c_str(), (unsigned long long)c.documents(),
                  (unsigned long long)c.chunks(),
                  c.vector_search() ? "vector+keyword" : "keyword-only",
                  c.embedding_model().c_str(),
                  c.reembedding() ? " (re-embedding)" : "");
    }
    return 0;
  }
  if (pos[0] == "reembed" && pos.size() == 2) {
    lumen::v1::ReembedCollectionRequest req;
    req.set_name(pos[1]);
    auto reader = stub->ReembedCollection(ctx.get(), req);
    lumen::v1::ReembedProgress p;
    const auto start = std::chrono::steady_clock::now();
    while (reader->Read(&p)) {
      const double secs = std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - start)
                              .count();
      std::fprintf(stderr, "\r%s %llu/%llu chunks, %.1f chunks/s",
                   Bar(p.done(), p.total()).c_str(),
                   (unsigned long long)p.done(), (unsigned long long)p.total(),
                   secs > 0 ? p.done() / secs : 0.0);
    }
    grpc::Status st = reader->Finish();
    std::fprintf(stderr, "\n");
    if (!st.ok()) return FailRpc(st);
    std::printf("re-embedded %s (%llu chunks)\n", pos[1].c_str(),
                (unsigned long long)p.done());
    return 0;
  }
  if (pos[0] == "delete" && pos.size() == 2) {
    lumen::v1::DeleteCollectionRequest req;
    req.set_name(pos[1]);
    lumen::v1::DeleteCollectionResponse resp;
    grpc::Status st = stub->DeleteCollection(ctx.get(), req, &resp);
    if (!st.ok()) return FailRpc(st);
    std::printf("deleted %s\n", pos[1].c_str());
    return 0;
  }
  return Fail(flags.Help(), 2);
}

int ClientIngest(const Args& args) {
  ClientFlags client;
  std::string collection;
  int64_t batch = 16, parallel = 4;
  bool quiet = false;
  FlagSet flags(
      "lumen ingest --collection C PATH...  (.txt and .md; directories "
      "recursively)");
  client.Register(&flags);
  flags.String("collection", &collection, "target collection");
  flags.Int("batch", &batch, "documents per upsert");
  flags.Int("parallel", &parallel,
            "upserts in flight at once (the server embeds one batch while "
            "it writes another)");
  flags.Bool("quiet", &quiet, "no progress bar");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  if (collection.empty() || flags.positional().empty())
    return Fail(flags.Help(), 2);
  if (batch < 1 || parallel < 1)
    return Fail("--batch and --parallel must be >= 1", 2);
  std::vector<std::string> files;
  for (const std::string& p : flags.positional()) CollectFiles(p, &files);
  if (files.empty()) return Fail("no .txt or .md files found");
  auto stub = lumen::v1::Knowledge::NewStub(client.Channel());
  const auto start = std::chrono::steady_clock::now();
  // Each stream takes the next batch of files, reads them and sends them;
  // files are read as they are sent, never all at once.
  std::atomic<size_t> next{0};
  std::mutex mu;  // the counters, the first error and the progress line
  uint64_t docs = 0, chunks = 0, unchanged = 0;
  std::optional<grpc::Status> error;
  auto stream = [&] {
    while (true) {
      const size_t first = next.fetch_add(batch);
      if (first >= files.size()) return;
      {
        std::lock_guard lock(mu);
        if (error) return;
      }
      lumen::v1::UpsertDocumentsRequest req;
      req.set_collection(collection);
      for (size_t j = first; j < std::min(files.size(), first + batch); ++j) {
        std::ifstream in(files[j]);
        std::stringstream ss;
        ss << in.rdbuf();
        auto* d = req.add_documents();
        d->set_id(files[j]);
        d->set_source("file://" + files[j]);
        d->set_title(files[j].substr(files[j].rfind('/') + 1));
        d->set_text(ss.str());
      }
      lumen::v1::UpsertDocumentsResponse resp;
      auto ctx = client.Context();
      grpc::Status st = stub->UpsertDocuments(ctx.get(), req, &resp);
      std::lock_guard lock(mu);
      if (!st.ok()) {
        if (!error) error = st;
        return;
      }
      docs += req.documents_size();
      chunks += resp.chunks();
      unchanged += resp.unchanged();
      if (!quiet) {
        const double secs = std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - start)
                                .count();
        std::fprintf(stderr,
                     "\r%s %llu/%zu documents, %llu chunks, %.1f docs/s, "
                     "%.1f chunks/s",
                     Bar(docs, files.size()).c_str(), (unsigned long long)docs,
                     files.size(), (unsigned long long)chunks, docs / secs,
                     chunks / secs);
      }
    }
  };
  std::vector<std::thread> streams;
  for (int64_t i = 0; i < parallel; ++i) streams.emplace_back(stream);
  for (std::thread& t : streams) t.join();
  if (!quiet) std::fprintf(stderr, "\n");
  if (error) return FailRpc(*error);
  std::printf(
      "ingested %llu documents (%llu unchanged), %llu new chunks into %s\n",
      (unsigned long long)docs, (unsigned long long)unchanged,
      (unsigned long long)chunks, collection.c_str());
  return 0;
}

int ClientSearch(const Args& args) {
  ClientFlags client;
  std::string collection, query, mode = "hybrid";
  int64_t top_k = 5;
  double min_score = 0;
  FlagSet flags(
      "lumen search --collection C --query TEXT [--top-k K] [--mode "
      "hybrid|vector|keyword]");
  client.Register(&flags);
  flags.String("collection", &collection, "collection");
  flags.String("query", &query, "query text");
  flags.Int("top-k", &top_k, "hits");
  flags.Double("min-score", &min_score, "minimum score");
  flags.String("mode", &mode, "hybrid, vector or keyword");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  lumen::v1::SearchRequest req;
  req.set_collection(collection);
  req.set_query(query);
  req.set_top_k(top_k);
  req.set_min_score(min_score);
  req.set_mode(mode == "vector"    ? lumen::v1::SEARCH_MODE_VECTOR
               : mode == "keyword" ? lumen::v1::SEARCH_MODE_KEYWORD
                                   : lumen::v1::SEARCH_MODE_HYBRID);
  lumen::v1::SearchResponse resp;
  auto ctx = client.Context();
  grpc::Status st = lumen::v1::Knowledge::NewStub(client.Channel())
                        ->Search(ctx.get(), req, &resp);
  if (!st.ok()) return FailRpc(st);
  for (int i = 0; i < resp.hits_size(); ++i) {
    const auto& h = resp.hits(i);
    std::printf("[%d] %.4g %s#%lld %s\n    %s\n", i + 1, h.score(),
                h.document_id().c_str(), (long long)h.chunk_id(),
                h.source().c_str(), h.text().substr(0, 200).c_str());
  }
  std::fprintf(stderr, "%d hits in %.1f ms\n", resp.hits_size(),
               1e3 * resp.seconds());
  return 0;
}

}  // namespace lumen::tools
