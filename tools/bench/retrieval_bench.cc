// Retrieval figures: ingest throughput (chunks/s) with and without an
// embedding model, HNSW search latency p50/p99 and QPS with recall@10 on
// random 384-dim vectors, and the retrieval time a RAG request adds before
// its prompt reaches the engine.
//   retrieval_bench [--vectors 100000] [--embedding-model BERT.gguf] [--json]

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <set>

#include "base/flags.h"
#include "base/json_writer.h"
#include "retrieval/knowledge_store.h"
#include "retrieval/vector_index.h"
#include "server/embedding_worker.h"

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
double Pct(std::vector<double> v, double p) {
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

}  // namespace

int main(int argc, char** argv) {
  int64_t vectors = 100000, queries = 200, docs = 400, m = 16,
          ef_construction = 100, ef_search = 128;
  std::string embedding_model;
  bool json = false;
  lumen::FlagSet flags(
      "retrieval_bench [--vectors N] [--embedding-model BERT.gguf] [--json]");
  flags.Int("vectors", &vectors,
            "random 384-dim vectors in the HNSW benchmark");
  flags.Int("queries", &queries, "search queries");
  flags.Int("docs", &docs, "documents ingested in the ingest benchmark");
  flags.String("embedding-model", &embedding_model,
               "GGUF bert model for the ingest benchmark");
  flags.Bool("json", &json, "one JSON object");
  flags.Int("m", &m, "HNSW M");
  flags.Int("ef-construction", &ef_construction, "HNSW ef_construction");
  flags.Int("ef-search", &ef_search, "HNSW ef_search");
  if (auto s = flags.Parse(argc, argv); !s.ok() || flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stderr);
    return s.ok() ? 0 : 2;
  }
  lumen::JsonWriter w;
  w.BeginObject();
  std::mt19937 rng(3);

  // 1. HNSW at scale.
  constexpr int kDim = 384;
  std::normal_distribution<float> n;
  std::vector<float> data(static_cast<size_t>(vectors) * kDim);
  for (float& x : data) x = n(rng);
  lumen::retrieval::HnswOptions h{static_cast<int>(m),
                                  static_cast<int>(ef_construction),
                                  static_cast<int>(ef_search)};
  auto index = lumen::retrieval::VectorIndex::Create(kDim, h, vectors);
  auto t0 = Clock::now();
  for (int64_t i = 0; i < vectors; ++i) index->Add(i, &data[i * kDim]);
  const double build_s = Since(t0);
  for (int64_t i = 0; i < vectors; ++i)
    lumen::retrieval::Normalize(&data[i * kDim], kDim);
  std::vector<double> lat;
  int found = 0;
  std::vector<std::vector<float>> qs(queries, std::vector<float>(kDim));
  for (auto& q : qs) {
    for (float& x : q) x = n(rng);
    lumen::retrieval::Normalize(q.data(), kDim);
  }
  for (const auto& q : qs) {
    auto t = Clock::now();
    auto hits = index->Search(q.data(), 10);
    lat.push_back(Since(t));
    std::vector<std::pair<float, int64_t>> exact;
    exact.reserve(vectors);
    for (int64_t i = 0; i < vectors; ++i) {
      float dot = 0;
      for (int d = 0; d < kDim; ++d) dot += q[d] * data[i * kDim + d];
      exact.push_back({-dot, i});
    }
    std::partial_sort(exact.begin(), exact.begin() + 10, exact.end());
    std::set<int64_t> truth;
    for (int i = 0; i < 10; ++i) truth.insert(exact[i].second);
    for (const auto& hh : hits) found += truth.count(hh.label);
  }
  double total = 0;
  for (double l : lat) total += l;
  const double recall = static_cast<double>(found) / (queries * 10);
  w.Key("hnsw")
      .BeginObject()
      .Key("vectors")
      .Int(vectors)
      .Key("dim")
      .Int(kDim)
      .Key("m")
      .Int(h.m)
      .Key("ef_construction")
      .Int(h.ef_construction)
      .Key("ef_search")
      .Int(h.ef_search)
      .Key("build_seconds")
      .Double(build_s)
      .Key("search_p50_ms")
      .Double(1e3 * Pct(lat, 0.5))
      .Key("search_p99_ms")
      .Double(1e3 * Pct(lat, 0.99))
      .Key("qps_single_thread")
      .Double(queries / total)
      .Key("recall_at_10")
      .Double(recall)
      .EndObject();
  if (!json) {
    std::printf(
        "HNSW %lld x %d (M %d, ef_construction %d, ef_search %d): build %.1f "
        "s; search p50 %.3f ms, "
        "p99 %.3f ms, %.0f QPS (1 thread); recall@10 %.3f\n",
        (long long)vectors, kDim, h.m, h.ef_construction, h.ef_search, build_s,
        1e3 * Pct(lat, 0.5), 1e3 * Pct(lat, 0.99), queries / total, recall);
  }

  // 2. Ingest and RAG retrieval through the store.
  std::unique_ptr<lumen::server::EmbeddingWorker> embedder;
  if (!embedding_model.empty()) {
    auto e = lumen::server::EmbeddingWorker::Load(embedding_model);
    if (!e.ok()) {
      std::fprintf(stderr, "%s\n", std::string(e.status().message()).c_str());
      return 1;
    }
    embedder = std::move(*e);
  }
  for (bool with_model : {false, true}) {
    if (with_model && !embedder) continue;
    char dir_tmpl[] = "/tmp/lumen_bench_XXXXXX";
    const std::string dir = mkdtemp(dir_tmpl);
    auto store = lumen::retrieval::KnowledgeStore::Open(
        dir, with_model ? embedder.get() : nullptr, {128, 16});
    if (!store.ok() || !(*store)->CreateCollection("bench", "t", {}, {}).ok())
      return 1;
    int64_t chunks = 0;
    t0 = Clock::now();
    for (int64_t i = 0; i < docs; i += 8) {
      std::vector<lumen::retrieval::DocumentInput> batch;
      for (int64_t j = i; j < std::min(docs, i + 8); ++j) {
        batch.push_back(
            {"doc" + std::to_string(j), "", "", "", Document(rng, 20)});
      }
      auto r = (*store)->Upsert("bench", batch);
      if (!r.ok()) return 1;
      chunks += r->chunks;
    }
    const double ingest_s = Since(t0);
    std::vector<double> rag;
    for (int q = 0; q < 50; ++q) {
      lumen::retrieval::SearchRequest sr;
      sr.query = "river mountain rocket glacier";
      sr.top_k = 4;
      auto t = Clock::now();
      (void)(*store)->Search("bench", sr);
      rag.push_back(Since(t));
    }
    const char* label = with_model ? "with_embedding_model" : "keyword_only";
    w.Key(label)
        .BeginObject()
        .Key("documents")
        .Int(docs)
        .Key("chunks")
        .Int(chunks)
        .Key("chunks_per_s")
        .Double(chunks / ingest_s)
        .Key("docs_per_s")
        .Double(docs / ingest_s)
        .Key("rag_retrieval_p50_ms")
        .Double(1e3 * Pct(rag, 0.5))
        .Key("rag_retrieval_p99_ms")
        .Double(1e3 * Pct(rag, 0.99))
        .EndObject();
    if (!json) {
      std::printf(
          "ingest %s: %lld docs, %lld chunks in %.2f s = %.0f chunks/s (%.0f "
          "docs/s), durable "
          "commits; RAG retrieval (hybrid/keyword, top 4) p50 %.2f ms p99 %.2f "
          "ms\n",
          label, (long long)docs, (long long)chunks, ingest_s,
          chunks / ingest_s, docs / ingest_s, 1e3 * Pct(rag, 0.5),
          1e3 * Pct(rag, 0.99));
    }
  }
  w.EndObject();
  if (json) std::printf("%s\n", w.str().c_str());
  return 0;
}
