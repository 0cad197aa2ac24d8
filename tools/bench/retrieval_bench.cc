// Retrieval figures (prints them; no pass/fail):
//   --hnsw       HNSW recall@10 and search latency p50/p99 at two settings,
//                on clustered vectors (a mixture of Gaussians in a
//                low-dimensional subspace, like real embeddings) or random.
//   --encoder    embedding throughput of a BERT GGUF (--embedding-model):
//                one chunk per encoder call vs ragged batches.
//   --ingest     chunks/s through the knowledge store (--store DIR or
//                postgresql://...), keyword-only and with --embedding-model,
//                with --parallel concurrent upsert streams.
//   --visibility change-log visibility between two replicas on PostgreSQL
//                (--store postgresql://...): acknowledged on A -> applied
//                on B, p50/p99.
// Example:
//   retrieval_bench --hnsw --vectors 100000
//   retrieval_bench --encoder --ingest --embedding-model bert.gguf --store
//   /tmp/kb

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/flags.h"
#include "retrieval/knowledge_base.h"
#include "retrieval/knowledge_store.h"
#include "retrieval/vector_index.h"
#include "server/embedding_worker.h"

namespace {

using Clock = std::chrono::steady_clock;
using lumen::retrieval::DocumentInput;
using lumen::retrieval::HnswOptions;
using lumen::retrieval::KnowledgeStore;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
// Process CPU seconds (all threads): on a shared machine wall time depends
// on the neighbours, CPU time less so.
double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1)))];
}

std::string Document(std::mt19937& rng, int sentences) {
  static const char* kWords[] = {
      "river",   "mountain", "engine", "garden", "signal",  "harbor",
      "lantern", "copper",   "meadow", "rocket", "violin",  "glacier",
      "pepper",  "canyon",   "marble", "orchid", "thunder", "pixel"};
  std::string text;
  for (int s = 0; s < sentences; ++s) {
    const int n = 8 + rng() % 10;
    for (int w = 0; w < n; ++w)
      text += std::string(w ? " " : "") + kWords[rng() % 18];
    text += ". ";
  }
  return text;
}

// --- HNSW quality ---

// [n, dim] unit vectors: `clusters` Gaussian clusters (centres N(0, 1),
// points centre + N(0, spread^2) per coordinate) in a random
// `intrinsic`-dimensional subspace, plus a little full-dimensional noise.
std::vector<float> ClusteredVectors(int64_t n, int dim, int clusters,
                                    int intrinsic, float spread, uint32_t seed,
                                    std::mt19937& shared) {
  // The subspace and the centres are the dataset's (shared generator);
  // `seed` draws the points.
  static std::vector<float> basis, centres;
  if (basis.empty()) {
    std::normal_distribution<float> g;
    basis.resize(static_cast<size_t>(intrinsic) * dim);
    for (float& b : basis) b = g(shared) / std::sqrt(static_cast<float>(dim));
    centres.resize(static_cast<size_t>(clusters) * intrinsic);
    for (float& c : centres) c = g(shared);
  }
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> out(static_cast<size_t>(n) * dim);
  std::vector<float> z(intrinsic);
  for (int64_t i = 0; i < n; ++i) {
    const int k = rng() % clusters;
    for (int r = 0; r < intrinsic; ++r)
      z[r] = centres[k * intrinsic + r] + spread * g(rng);
    float* x = &out[i * dim];
    for (int d = 0; d < dim; ++d) x[d] = 0.02f * g(rng);
    for (int r = 0; r < intrinsic; ++r) {
      const float* b = &basis[static_cast<size_t>(r) * dim];
      for (int d = 0; d < dim; ++d) x[d] += z[r] * b[d];
    }
    lumen::retrieval::Normalize(x, dim);
  }
  return out;
}

struct ClusterShape {
  int clusters, intrinsic;
  float spread;
};

void HnswBench(int64_t vectors, int64_t queries, const std::string& data,
               const ClusterShape& shape,
               const std::vector<HnswOptions>& settings) {
  constexpr int kDim = 384;
  std::mt19937 rng(3);
  std::vector<float> base, query;
  if (data == "random") {
    std::normal_distribution<float> n;
    base.resize(static_cast<size_t>(vectors) * kDim);
    for (float& x : base) x = n(rng);
    query.resize(static_cast<size_t>(queries) * kDim);
    for (float& x : query) x = n(rng);
    for (int64_t i = 0; i < vectors; ++i)
      lumen::retrieval::Normalize(&base[i * kDim], kDim);
    for (int64_t i = 0; i < queries; ++i)
      lumen::retrieval::Normalize(&query[i * kDim], kDim);
  } else {
    base = ClusteredVectors(vectors, kDim, shape.clusters, shape.intrinsic,
                            shape.spread, 1, rng);
    query = ClusteredVectors(queries, kDim, shape.clusters, shape.intrinsic,
                             shape.spread, 2, rng);
  }
  // Exact top 10 by brute force (the reference).
  std::vector<std::set<int64_t>> truth(queries);
#pragma omp parallel for schedule(dynamic)
  for (int64_t q = 0; q < queries; ++q) {
    std::vector<std::pair<float, int64_t>> exact(vectors);
    for (int64_t i = 0; i < vectors; ++i) {
      float dot = 0;
      for (int d = 0; d < kDim; ++d)
        dot += query[q * kDim + d] * base[i * kDim + d];
      exact[i] = {-dot, i};
    }
    std::partial_sort(exact.begin(), exact.begin() + 10, exact.end());
    for (int i = 0; i < 10; ++i) truth[q].insert(exact[i].second);
  }
  for (const HnswOptions& h : settings) {
    auto index = lumen::retrieval::VectorIndex::Create(kDim, h, vectors);
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < vectors; ++i) index->Add(i, &base[i * kDim]);
    const double build_s = Since(t0);
    std::vector<double> lat;
    int found = 0;
    for (int64_t q = 0; q < queries; ++q) {
      const auto t = Clock::now();
      auto hits = index->Search(&query[q * kDim], 10);
      lat.push_back(Since(t));
      for (const auto& hit : hits) found += truth[q].count(hit.label);
    }
    std::printf(
        "hnsw %s%s %lld x %d  M %d ef_construction %d ef_search %d: build "
        "%.1f s, recall@10 %.3f, search p50 %.3f ms p99 %.3f ms (1 thread, "
        "%lld queries)\n",
        data.c_str(),
        data == "clustered"
            ? absl::StrCat(" (", shape.clusters, " clusters, intrinsic dim ",
                           shape.intrinsic, ", spread ", shape.spread, ")")
                  .c_str()
            : "",
        static_cast<long long>(vectors), kDim, h.m, h.ef_construction,
        h.ef_search, build_s, static_cast<double>(found) / (queries * 10),
        1e3 * Pct(lat, 0.5), 1e3 * Pct(lat, 0.99),
        static_cast<long long>(queries));
  }
}

// --- Embedding throughput ---

std::vector<std::string> Chunks(int64_t n, std::mt19937& rng) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(Document(rng, 6));
  return out;
}

void EncoderBench(lumen::server::EmbeddingWorker* embedder, int64_t chunks) {
  std::mt19937 rng(7);
  const std::vector<std::string> texts = Chunks(chunks, rng);
  int64_t tokens = 0;
  for (const std::string& t : texts) tokens += embedder->CountTokens(t);
  for (bool batched : {false, true}) {
    const double cpu0 = CpuSeconds();
    const auto t0 = Clock::now();
    if (batched) {
      (void)embedder->Embed(texts);
    } else {
      for (const std::string& t : texts) (void)embedder->Embed({t});
    }
    const double wall = Since(t0), cpu = CpuSeconds() - cpu0;
    std::printf(
        "encoder %s: %lld chunks (%.0f tokens each) in %.2f s = %.1f "
        "chunks/s (%.0f tokens/s); %.2f CPU s = %.1f chunks per CPU s\n",
        batched ? "batched (one call)" : "one chunk per call",
        static_cast<long long>(chunks), static_cast<double>(tokens) / chunks,
        wall, chunks / wall, tokens / wall, cpu, chunks / cpu);
  }
}

// --- Ingest ---

void IngestBench(const std::string& store_location, const std::string& label,
                 lumen::retrieval::Embedder* embedder, int64_t docs,
                 int64_t batch, int64_t parallel) {
  lumen::retrieval::StoreOptions options;
  options.location = store_location;
  options.embedder = embedder;
  options.chunking = {128, 16};
  auto store = KnowledgeStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "cannot open %s: %s\n", store_location.c_str(),
                 std::string(store.status().message()).c_str());
    return;
  }
  const std::string collection =
      absl::StrCat("bench", Clock::now().time_since_epoch().count());
  if (!(*store)->CreateCollection(collection, "t", {}, {}).ok()) return;
  std::mt19937 rng(11);
  std::vector<DocumentInput> all;
  for (int64_t i = 0; i < docs; ++i)
    all.push_back({absl::StrCat("doc", i), "", "", "", Document(rng, 20)});
  std::atomic<int64_t> next{0}, chunks{0};
  const double cpu0 = CpuSeconds();
  const auto t0 = Clock::now();
  std::vector<std::thread> streams;
  for (int64_t p = 0; p < parallel; ++p) {
    streams.emplace_back([&] {
      while (true) {
        const int64_t first = next.fetch_add(batch);
        if (first >= docs) return;
        std::vector<DocumentInput> b(
            all.begin() + first, all.begin() + std::min(docs, first + batch));
        auto r = (*store)->Upsert(collection, b);
        if (!r.ok()) {
          std::fprintf(stderr, "upsert: %s\n",
                       std::string(r.status().message()).c_str());
          return;
        }
        chunks += r->chunks;
      }
    });
  }
  for (auto& t : streams) t.join();
  const double wall = Since(t0), cpu = CpuSeconds() - cpu0;
  std::vector<double> rag;
  for (int q = 0; q < 50; ++q) {
    lumen::retrieval::SearchRequest sr;
    sr.query = "river mountain rocket glacier";
    sr.top_k = 4;
    const auto t = Clock::now();
    (void)(*store)->Search(collection, sr);
    rag.push_back(Since(t));
  }
  std::printf(
      "ingest %s, %s: %lld docs, %lld chunks in %.2f s = %.1f chunks/s "
      "(%lld streams of %lld docs per upsert; %.2f CPU s); hybrid search "
      "top 4 p50 %.2f ms p99 %.2f ms\n",
      store_location.rfind("postgres", 0) == 0 ? "postgresql" : "sqlite",
      label.c_str(), static_cast<long long>(docs),
      static_cast<long long>(chunks.load()), wall, chunks / wall,
      static_cast<long long>(parallel), static_cast<long long>(batch), cpu,
      1e3 * Pct(rag, 0.5), 1e3 * Pct(rag, 0.99));
  (void)(*store)->DeleteCollection(collection);
}

// --- Replica visibility (PostgreSQL) ---

void VisibilityBench(const std::string& uri, lumen::retrieval::Embedder* e,
                     int64_t writes) {
  auto a = KnowledgeStore::Open({uri, "", e, {128, 16}});
  auto b = KnowledgeStore::Open({uri, "", e, {128, 16}});
  if (!a.ok() || !b.ok()) {
    std::fprintf(stderr, "cannot open %s\n", uri.c_str());
    return;
  }
  auto* ka = static_cast<lumen::retrieval::KnowledgeBase*>(a->get());
  auto* kb = static_cast<lumen::retrieval::KnowledgeBase*>(b->get());
  const std::string collection =
      absl::StrCat("vis", Clock::now().time_since_epoch().count());
  if (!ka->CreateCollection(collection, "t", {}, {}).ok()) return;
  std::mt19937 rng(5);
  std::vector<double> lat;
  int late = 0;
  for (int64_t i = 0; i < writes; ++i) {
    if (!ka->Upsert(collection,
                    {{absl::StrCat("d", i), "", "", "", Document(rng, 2)}})
             .ok()) {
      return;
    }
    // Acknowledged on A: from here until B has applied it.
    const auto t0 = Clock::now();
    const int64_t seq = *ka->AppliedSequence(collection);
    if (!kb->AwaitApplied(collection, seq, t0 + std::chrono::seconds(5)).ok())
      ++late;
    lat.push_back(Since(t0));
  }
  std::printf(
      "visibility (postgresql, LISTEN/NOTIFY): %lld writes acknowledged on "
      "replica A, applied on replica B after p50 %.2f ms p99 %.2f ms max "
      "%.2f ms (%d later than 5 s)\n",
      static_cast<long long>(writes), 1e3 * Pct(lat, 0.5), 1e3 * Pct(lat, 0.99),
      1e3 * Pct(lat, 1.0), late);
  (void)ka->DeleteCollection(collection);
}

}  // namespace

int main(int argc, char** argv) {
  bool hnsw = false, encoder = false, ingest = false, visibility = false;
  int64_t vectors = 100000, queries = 200, docs = 400, batch = 8, parallel = 4,
          encoder_chunks = 64, writes = 200, threads = 0;
  std::string embedding_model, store, data = "clustered";
  std::string hnsw_a = "16,200,64", hnsw_b = "32,200,128";
  int64_t clusters = 1000, intrinsic = 48;
  double spread = 1.0;
  lumen::FlagSet flags(
      "retrieval_bench [--hnsw] [--encoder] [--ingest] [--visibility] ...");
  flags.Bool("hnsw", &hnsw, "HNSW recall and latency");
  flags.Bool("encoder", &encoder, "embedding throughput (--embedding-model)");
  flags.Bool("ingest", &ingest, "ingest throughput through the store");
  flags.Bool("visibility", &visibility,
             "replica visibility latency (--store postgresql://...)");
  flags.Int("vectors", &vectors, "vectors in the HNSW benchmark");
  flags.Int("queries", &queries, "HNSW queries");
  flags.String("data", &data, "clustered or random (HNSW)");
  flags.Int("clusters", &clusters, "clustered data: Gaussian clusters");
  flags.Int("intrinsic-dim", &intrinsic,
            "clustered data: dimension of the subspace they live in");
  flags.Double("spread", &spread,
               "clustered data: within-cluster std (centres have std 1)");
  flags.String("hnsw-a", &hnsw_a,
               "first HNSW setting: M,ef_construction,ef_search");
  flags.String("hnsw-b", &hnsw_b, "second HNSW setting");
  flags.String("embedding-model", &embedding_model, "GGUF bert model");
  flags.Int("threads", &threads, "embedding worker threads (0: all)");
  flags.Int("encoder-chunks", &encoder_chunks,
            "chunks in the encoder benchmark");
  flags.String("store", &store,
               "knowledge store: a directory (SQLite, default: a temporary "
               "one) or postgresql://...");
  flags.Int("docs", &docs, "documents ingested (20 sentences each)");
  flags.Int("batch", &batch, "documents per upsert");
  flags.Int("parallel", &parallel, "concurrent upsert streams");
  flags.Int("writes", &writes, "writes in the visibility benchmark");
  if (auto s = flags.Parse(argc, argv); !s.ok() || flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stderr);
    return s.ok() ? 0 : 2;
  }
  if (hnsw) {
    std::vector<HnswOptions> settings;
    for (const std::string& spec : {hnsw_a, hnsw_b}) {
      HnswOptions h;
      if (std::sscanf(spec.c_str(), "%d,%d,%d", &h.m, &h.ef_construction,
                      &h.ef_search) != 3) {
        std::fprintf(stderr, "bad HNSW setting %s\n", spec.c_str());
        return 2;
      }
      settings.push_back(h);
    }
    HnswBench(vectors, queries, data,
              {static_cast<int>(clusters), static_cast<int>(intrinsic),
               static_cast<float>(spread)},
              settings);
  }
  std::unique_ptr<lumen::server::EmbeddingWorker> embedder;
  if (!embedding_model.empty()) {
    auto e = lumen::server::EmbeddingWorker::Load(embedding_model,
                                                  static_cast<int>(threads));
    if (!e.ok()) {
      std::fprintf(stderr, "%s\n", std::string(e.status().message()).c_str());
      return 1;
    }
    embedder = std::move(*e);
  }
  if (encoder && embedder) EncoderBench(embedder.get(), encoder_chunks);
  if (ingest) {
    if (store.empty()) {
      char tmpl[] = "/tmp/lumen_bench_XXXXXX";
      store = mkdtemp(tmpl);
    }
    IngestBench(store, "keyword only", nullptr, docs, batch, parallel);
    if (embedder) {
      IngestBench(store, "with embeddings", embedder.get(), docs, batch,
                  parallel);
    }
  }
  if (visibility) VisibilityBench(store, embedder.get(), writes);
  return 0;
}
