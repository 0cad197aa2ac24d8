#pragma once
// Metrics: lumend's Prometheus metrics (names and meaning in docs/metrics.md),
// served at /metrics on --metrics-listen. Updated by engine threads once per
// step (gauges, step histograms) and per finished request (histograms,
// counters), and by RPC threads for requests rejected before the engine.
// Labels are bounded: model, status code, finish reason, loaded adapters,
// MoE layer and expert, served method.

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine_observer.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace lumen::server {

class Metrics {
 public:
  // Starts the HTTP exposer on `address` ("host:port", port 0 picks one).
  // Internal error when it cannot bind.
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(
      const std::string& address);
  ~Metrics();

  int port() const;
  // An observer for one model's engine.
  engine::EngineObserver* ObserverFor(const std::string& model);
  // Counts a request that failed before reaching an engine; `api` is the
  // front end ("grpc", "http").
  void CountRejected(const std::string& model, const std::string& api,
                     absl::StatusCode code);
  // Drops an unloaded adapter's series, so labels stay bounded by the
  // loaded set.
  void ForgetAdapter(const std::string& model, const std::string& adapter);
  // A request refused by its key's quota `limit` (quota.h names).
  void CountQuotaRejection(const std::string& tenant, const std::string& limit);
  // A request refused because it did not parse; `method` is its full path
  // ("/lumen.v1.Inference/Generate"), bounded by the served methods.
  void CountUnparsable(const std::string& method);
  void ObserveRetrieval(double seconds);
  void SetRagDocuments(int64_t documents);

 private:
  class ModelObserver;
  Metrics() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Collectable> process_;
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Family<prometheus::Histogram>* request_duration_ = nullptr;
  prometheus::Family<prometheus::Histogram>* ttft_ = nullptr;
  prometheus::Family<prometheus::Histogram>* tpot_ = nullptr;
  prometheus::Family<prometheus::Counter>* prompt_tokens_ = nullptr;
  prometheus::Family<prometheus::Counter>* generation_tokens_ = nullptr;
  prometheus::Family<prometheus::Counter>* prefix_hits_ = nullptr;
  prometheus::Family<prometheus::Gauge>* queue_depth_ = nullptr;
  prometheus::Family<prometheus::Gauge>* running_ = nullptr;
  prometheus::Family<prometheus::Gauge>* kv_usage_ = nullptr;
  prometheus::Family<prometheus::Gauge>* kv_bytes_ = nullptr;
  prometheus::Family<prometheus::Gauge>* kv_populated_bytes_ = nullptr;
  prometheus::Family<prometheus::Histogram>* step_tokens_ = nullptr;
  prometheus::Family<prometheus::Histogram>* step_duration_ = nullptr;
  prometheus::Family<prometheus::Counter>* preemptions_ = nullptr;
  prometheus::Family<prometheus::Histogram>* rag_seconds_ = nullptr;
  prometheus::Family<prometheus::Gauge>* rag_documents_ = nullptr;
  prometheus::Family<prometheus::Counter>* moe_expert_tokens_ = nullptr;
  prometheus::Family<prometheus::Counter>* adapter_requests_ = nullptr;
  prometheus::Family<prometheus::Counter>* adapter_prompt_tokens_ = nullptr;
  prometheus::Family<prometheus::Counter>* adapter_generation_tokens_ = nullptr;
  prometheus::Family<prometheus::Counter>* quota_rejections_ = nullptr;
  prometheus::Family<prometheus::Counter>* unparsable_requests_ = nullptr;
  std::mutex mu_;  // guards observers_ and the counter families' Add()
  std::map<std::string, std::unique_ptr<ModelObserver>> observers_;
  prometheus::Histogram* rag_histogram_ = nullptr;
  prometheus::Gauge* rag_documents_gauge_ = nullptr;
};

// Forwards engine events to several observers (request log + metrics).
class ObserverList : public engine::EngineObserver {
 public:
  void Add(engine::EngineObserver* o) {
    if (o) observers_.push_back(o);
  }
  void OnStep(const engine::StepSummary& s) override {
    for (auto* o : observers_) o->OnStep(s);
  }
  void OnRequestFinished(const engine::RequestSummary& r) override {
    for (auto* o : observers_) o->OnRequestFinished(r);
  }
  void OnGauges(const std::string& model,
                const engine::EngineStats& s) override {
    for (auto* o : observers_) o->OnGauges(model, s);
  }
  void OnExpertTokens(std::span<const int64_t> cumulative,
                      int64_t n_experts) override {
    for (auto* o : observers_) o->OnExpertTokens(cumulative, n_experts);
  }

 private:
  std::vector<engine::EngineObserver*> observers_;
};

}  // namespace lumen::server
