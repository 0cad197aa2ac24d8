#include "server/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/status_util.h"

#ifndef LUMEN_VERSION
#define LUMEN_VERSION "0.1.0"
#endif
#ifndef LUMEN_COMMIT
#define LUMEN_COMMIT "unknown"
#endif

namespace lumen::server {

namespace {

using prometheus::Histogram;

// Exponential buckets from `start`, multiplied by `factor`, `count` of them.
Histogram::BucketBoundaries Exponential(double start, double factor,
                                        int count) {
  Histogram::BucketBoundaries b;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor)
    b.push_back(std::round(v * 1e6) / 1e6);
  return b;
}

// TTFT and request duration: 1 ms to 60 s.
const Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
      0.5,   1,      2.5,   5,    10,    20,   30,  60};
  return *b;
}
// Time per output token: 0.5 ms to 2 s.
const Histogram::BucketBoundaries& TokenBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2};
  return *b;
}

// process_* metrics read from /proc at scrape time.
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const double cpu = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                       1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    out.push_back(Single("process_cpu_seconds_total",
                         "User and system CPU time spent.",
                         prometheus::MetricType::Counter, cpu));
    long pages = 0, resident = 0;
    std::ifstream statm("/proc/self/statm");
    statm >> pages >> resident;
    out.push_back(
        Single("process_resident_memory_bytes",
               "Resident memory size in bytes.", prometheus::MetricType::Gauge,
               static_cast<double>(resident) * sysconf(_SC_PAGESIZE)));
    int fds = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (readdir(d) != nullptr) ++fds;
      closedir(d);
      fds -= 3;  // ".", ".." and the directory's own descriptor
    }
    out.push_back(Single("process_open_fds", "Number of open file descriptors.",
                         prometheus::MetricType::Gauge, fds));
    return out;
  }

 private:
  static prometheus::MetricFamily Single(const std::string& name,
                                         const std::string& help,
                                         prometheus::MetricType type,
                                         double value) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    prometheus::ClientMetric m;
    if (type == prometheus::MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    f.metric.push_back(m);
    return f;
  }
};

}  // namespace

// Per-model metric handles, created once. The engine thread writes the step
// and gauge metrics (OnStep, OnGauges, OnExpertTokens: `last_` and the
// expert counters are its own); the output thread reports finished requests
// (OnRequestFinished touches only thread-safe histograms and, under mu_,
// the labelled families).
class Metrics::ModelObserver : public engine::EngineObserver {
 public:
  ModelObserver(Metrics* m, const std::string& model) : m_(m), model_(model) {
    const prometheus::Labels l{{"model", model}};
    request_duration_ = &m->request_duration_->Add(l, LatencyBuckets());
    ttft_ = &m->ttft_->Add(l, LatencyBuckets());
    tpot_ = &m->tpot_->Add(l, TokenBuckets());
    prompt_tokens_ = &m->prompt_tokens_->Add(l);
    generation_tokens_ = &m->generation_tokens_->Add(l);
    prefix_hits_ = &m->prefix_hits_->Add(l);
    queue_depth_ = &m->queue_depth_->Add(l);
    running_ = &m->running_->Add(l);
    kv_usage_ = &m->kv_usage_->Add(l);
    kv_bytes_ = &m->kv_bytes_->Add(l);
    kv_populated_bytes_ = &m->kv_populated_bytes_->Add(l);
    step_tokens_ = &m->step_tokens_->Add(l, Exponential(1, 2, 12));
    step_duration_ = &m->step_duration_->Add(l, LatencyBuckets());
    preemptions_ = &m->preemptions_->Add(l);
  }

  void OnStep(const engine::StepSummary& s) override {
    step_tokens_->Observe(s.num_tokens);
    step_duration_->Observe(s.seconds);
  }

  void OnRequestFinished(const engine::RequestSummary& r) override {
    request_duration_->Observe(r.timings.total_seconds);
    if (r.usage.completion_tokens > 0)
      ttft_->Observe(r.timings.time_to_first_token_seconds);
    if (r.usage.completion_tokens > 1)
      tpot_->Observe(r.timings.time_per_output_token_seconds);
    std::lock_guard<std::mutex> lock(m_->mu_);
    m_->requests_
        ->Add({{"model", model_},
               {"status", CodeName(r.code)},
               {"finish_reason", r.finish_reason},
               {"api", r.api}})
        .Increment();
    if (!r.adapter.empty()) {
      const prometheus::Labels l{{"model", model_}, {"adapter", r.adapter}};
      m_->adapter_requests_->Add(l).Increment();
      m_->adapter_prompt_tokens_->Add(l).Increment(r.usage.prompt_tokens);
      m_->adapter_generation_tokens_->Add(l).Increment(
          r.usage.completion_tokens);
    }
  }

  void OnExpertTokens(std::span<const int64_t> cumulative,
                      int64_t n_experts) override {
    if (expert_counters_.empty()) {
      std::lock_guard<std::mutex> lock(m_->mu_);
      for (size_t i = 0; i < cumulative.size(); ++i) {
        expert_counters_.push_back(&m_->moe_expert_tokens_->Add(
            {{"model", model_},
             {"layer", std::to_string(i / n_experts)},
             {"expert", std::to_string(i % n_experts)}}));
      }
      expert_last_.assign(cumulative.size(), 0);
    }
    for (size_t i = 0; i < cumulative.size(); ++i)
      Advance(expert_counters_[i], cumulative[i], &expert_last_[i]);
  }

  void OnGauges(const std::string&, const engine::EngineStats& s) override {
    queue_depth_->Set(s.queue_depth);
    running_->Set(s.running);
    kv_usage_->Set(s.kv_blocks_total > 0
                       ? 1.0 - static_cast<double>(s.kv_blocks_free) /
                                   s.kv_blocks_total
                       : 0.0);
    kv_bytes_->Set(static_cast<double>(s.kv_cache_bytes));
    kv_populated_bytes_->Set(static_cast<double>(s.kv_cache_populated_bytes));
    // The engine keeps cumulative totals; counters advance by the difference.
    Advance(prompt_tokens_, s.prompt_tokens, &last_.prompt_tokens);
    Advance(generation_tokens_, s.generation_tokens, &last_.generation_tokens);
    Advance(prefix_hits_, s.prefix_cache_hit_tokens,
            &last_.prefix_cache_hit_tokens);
    Advance(preemptions_, s.preemptions, &last_.preemptions);
  }

 private:
  static void Advance(prometheus::Counter* c, int64_t total, int64_t* last) {
    if (total > *last) c->Increment(static_cast<double>(total - *last));
    *last = total;
  }
  Metrics* m_;
  std::string model_;
  engine::EngineStats last_;
  prometheus::Histogram *request_duration_, *ttft_, *tpot_, *step_tokens_,
      *step_duration_;
  prometheus::Counter *prompt_tokens_, *generation_tokens_, *prefix_hits_,
      *preemptions_;
  prometheus::Gauge *queue_depth_, *running_, *kv_usage_, *kv_bytes_,
      *kv_populated_bytes_;
  std::vector<prometheus::Counter*> expert_counters_;  // [layer * experts + e]
  std::vector<int64_t> expert_last_;
};

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(
    const std::string& address) {
  std::unique_ptr<Metrics> m(new Metrics());
  m->registry_ = std::make_shared<prometheus::Registry>();
  auto& r = *m->registry_;
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  m->requests_ = &BuildCounter()
                      .Name("lumen_requests_total")
                      .Help(
                          "Finished generation requests by model, status code, "
                          "finish reason and front end (api: grpc or http).")
                      .Register(r);
  m->request_duration_ =
      &BuildHistogram()
           .Name("lumen_request_duration_seconds")
           .Help("Arrival to last token of generation requests.")
           .Register(r);
  m->ttft_ = &BuildHistogram()
                  .Name("lumen_time_to_first_token_seconds")
                  .Help("Arrival to the first generated token.")
                  .Register(r);
  m->tpot_ = &BuildHistogram()
                  .Name("lumen_time_per_output_token_seconds")
                  .Help(
                      "Mean time between generated tokens after the first, per "
                      "request.")
                  .Register(r);
  m->prompt_tokens_ =
      &BuildCounter()
           .Name("lumen_prompt_tokens_total")
           .Help(
               "Prompt tokens computed (prefill), prefix-cache hits excluded.")
           .Register(r);
  m->generation_tokens_ = &BuildCounter()
                               .Name("lumen_generation_tokens_total")
                               .Help("Generated (output) tokens.")
                               .Register(r);
  m->prefix_hits_ = &BuildCounter()
                         .Name("lumen_prefix_cache_hit_tokens_total")
                         .Help("Prompt tokens reused from the prefix cache.")
                         .Register(r);
  m->queue_depth_ = &BuildGauge()
                         .Name("lumen_queue_depth")
                         .Help("Requests waiting to be scheduled.")
                         .Register(r);
  m->running_ =
      &BuildGauge()
           .Name("lumen_running_sequences")
           .Help("Requests holding KV cache blocks (prefilling or decoding).")
           .Register(r);
  m->kv_usage_ =
      &BuildGauge()
           .Name("lumen_kv_cache_usage_ratio")
           .Help("Fraction of KV cache blocks referenced by requests (0..1).")
           .Register(r);
  m->kv_bytes_ = &BuildGauge()
                      .Name("lumen_kv_cache_bytes")
                      .Help("Size of the KV cache arena (--kv-cache-mb).")
                      .Register(r);
  m->kv_populated_bytes_ =
      &BuildGauge()
           .Name("lumen_kv_cache_populated_bytes")
           .Help(
               "Bytes of the KV cache arena the idle engine has backed "
               "with memory ahead of use (MADV_POPULATE_WRITE) since "
               "start; it stops short of the arena when the kernel "
               "refuses.")
           .Register(r);
  m->step_tokens_ =
      &BuildHistogram()
           .Name("lumen_step_tokens")
           .Help("Tokens computed per engine step (decode + prefill chunks).")
           .Register(r);
  m->step_duration_ = &BuildHistogram()
                           .Name("lumen_step_duration_seconds")
                           .Help("Wall time of one engine step.")
                           .Register(r);
  m->preemptions_ = &BuildCounter()
                         .Name("lumen_preemptions_total")
                         .Help("Requests preempted because KV blocks ran out.")
                         .Register(r);
  m->rag_seconds_ =
      &BuildHistogram()
           .Name("lumen_rag_retrieval_seconds")
           .Help("Time spent retrieving passages for RAG requests.")
           .Register(r);
  m->rag_documents_ = &BuildGauge()
                           .Name("lumen_rag_documents")
                           .Help("Documents in the knowledge store.")
                           .Register(r);
  m->moe_expert_tokens_ =
      &BuildCounter()
           .Name("lumen_moe_expert_tokens_total")
           .Help("Tokens routed to each expert of MoE models.")
           .Register(r);
  m->adapter_requests_ =
      &BuildCounter()
           .Name("lumen_adapter_requests_total")
           .Help("Finished generation requests per LoRA adapter.")
           .Register(r);
  m->adapter_prompt_tokens_ =
      &BuildCounter()
           .Name("lumen_adapter_prompt_tokens_total")
           .Help("Prompt tokens of requests per LoRA adapter.")
           .Register(r);
  m->adapter_generation_tokens_ =
      &BuildCounter()
           .Name("lumen_adapter_generation_tokens_total")
           .Help("Generated tokens per LoRA adapter.")
           .Register(r);
  m->quota_rejections_ =
      &BuildCounter()
           .Name("lumen_quota_rejections_total")
           .Help(
               "Requests refused by their API key's quota, by tenant and "
               "limit.")
           .Register(r);
  m->unparsable_requests_ =
      &BuildCounter()
           .Name("lumen_unparsable_requests_total")
           .Help(
               "Requests refused with INVALID_ARGUMENT because their bytes "
               "did not parse as the method's request message, by method.")
           .Register(r);
  BuildGauge()
      .Name("lumen_build_info")
      .Help("Build version and commit; always 1.")
      .Register(r)
      .Add({{"version", LUMEN_VERSION}, {"commit", LUMEN_COMMIT}})
      .Set(1);
  m->rag_histogram_ = &m->rag_seconds_->Add({}, LatencyBuckets());
  m->rag_documents_gauge_ = &m->rag_documents_->Add({});
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  m->exposer_->RegisterCollectable(m->registry_);
  m->process_ = std::make_shared<ProcessCollector>();
  m->exposer_->RegisterCollectable(m->process_);
  return m;
}

Metrics::~Metrics() = default;

int Metrics::port() const {
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports[0];
}

engine::EngineObserver* Metrics::ObserverFor(const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& o = observers_[model];
  if (!o) o = std::make_unique<ModelObserver>(this, model);
  return o.get();
}

void Metrics::CountRejected(const std::string& model, const std::string& api,
                            absl::StatusCode code) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_
      ->Add({{"model", model},
             {"status", CodeName(code)},
             {"finish_reason", "rejected"},
             {"api", api}})
      .Increment();
}

void Metrics::ForgetAdapter(const std::string& model,
                            const std::string& adapter) {
  std::lock_guard<std::mutex> lock(mu_);
  const prometheus::Labels l{{"model", model}, {"adapter", adapter}};
  for (auto* family : {adapter_requests_, adapter_prompt_tokens_,
                       adapter_generation_tokens_}) {
    family->Remove(&family->Add(l));
  }
}

void Metrics::CountQuotaRejection(const std::string& tenant,
                                  const std::string& limit) {
  std::lock_guard<std::mutex> lock(mu_);
  quota_rejections_->Add({{"tenant", tenant}, {"limit", limit}}).Increment();
}

void Metrics::CountUnparsable(const std::string& method) {
  std::lock_guard<std::mutex> lock(mu_);
  unparsable_requests_->Add({{"method", method}}).Increment();
}

void Metrics::ObserveRetrieval(double seconds) {
  rag_histogram_->Observe(seconds);
}

void Metrics::SetRagDocuments(int64_t documents) {
  rag_documents_gauge_->Set(static_cast<double>(documents));
}

}  // namespace lumen::server
