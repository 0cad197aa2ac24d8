// lumend: the Lumen serving daemon. See ../shared/SPEC.md section 2 and
// `lumend --help`.
//
// Ownership and shutdown order: everything lives in Run()'s scope, declared
// so that what is used is destroyed after its users: metrics and the
// knowledge store outlive the engines (stopped explicitly), the executor
// outlives the services whose work it runs (joined after the gRPC server
// shut down).

#include <malloc.h>
#include <omp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/flags.h"
#include "base/openmp_wait.h"
#include "engine/kv_cache.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/adapter_registry.h"
#include "server/admin_service.h"
#include "server/auth.h"
#include "server/embedding_worker.h"
#include "server/executor.h"
#include "server/generate_pipeline.h"
#include "server/http/http_server.h"
#include "server/inference_service.h"
#include "server/knowledge_service.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/request_log.h"

namespace {

// "1.02 s (file 0.01 s, weights 0.48 s, kernel choice 0.47 s, engine 0.00 s,
// other 0.06 s)": where a model load's time went.
std::string LoadTimeSummary(double total,
                            const lumen::server::ServedModel::LoadSeconds& s) {
  const double other =
      std::max(0.0, total - s.file - s.weights - s.kernel_choice - s.engine);
  return absl::StrFormat(
      "%.2f s (file %.2f s, weights %.2f s, kernel choice %.2f s, engine "
      "%.2f s, other %.2f s)",
      total, s.file, s.weights, s.kernel_choice, s.engine, other);
}

using lumen::server::LogFormat;
using lumen::server::LogInfo;

struct Flags {
  std::vector<std::string> models, loras;
  std::string listen = "127.0.0.1:50051";
  std::string http_listen = "127.0.0.1:8080";
  int64_t http_threads = 0;
  std::string metrics_listen = "127.0.0.1:9464";
  int64_t threads = 0, embedding_threads = 0, executor_threads = 4;
  int64_t ctx_size = 0, kv_cache_mb = 1024, max_batch_tokens = 2048;
  int64_t decode_prefill_tokens = 0;
  double max_decode_stall = 1.0;
  int64_t max_running = 64, max_queue = 256;
  int64_t max_request_bytes = 8 << 20;
  std::string weights = "auto", data_dir = "./lumen-data", embedding_model,
              api_keys, knowledge_store, kv_cache_type = "f16";
  std::string tls_cert, tls_key, tls_client_ca, log_format = "text",
                                                chat_template = "auto";
  bool share_prefix_cache = false;
  double shutdown_grace = 30.0;
};

// The contents of the PEM file given as --`flag`.
absl::StatusOr<std::string> ReadPem(const std::string& flag,
                                    const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  if (in) ss << in.rdbuf();
  if (!in || ss.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read --", flag, " ", path, ": ",
                     in ? "no PEM block in it" : std::strerror(errno)));
  }
  return ss.str();
}

bool IsLoopback(const std::string& addr) {
  return absl::StartsWith(addr, "127.") ||
         absl::StartsWith(addr, "localhost:") ||
         absl::StartsWith(addr, "[::1]:");
}

// How the cores are split (documented in --help): engines share what the
// embedder does not take; the embedder takes a quarter of the cores from 4
// cores up, and shares with the engines below that.
struct ThreadPlan {
  int engine = 1;
  int embedding = 1;
};
ThreadPlan PlanThreads(const Flags& f, int cores, bool embedder) {
  ThreadPlan p;
  const int num_models = std::max<int>(1, static_cast<int>(f.models.size()));
  p.embedding = f.embedding_threads > 0 ? static_cast<int>(f.embedding_threads)
                                        : std::max(1, cores / 4);
  const int reserved = embedder && cores >= 4 ? p.embedding : 0;
  p.engine = f.threads > 0 ? static_cast<int>(f.threads)
                           : std::max(1, (cores - reserved) / num_models);
  return p;
}

// Waits for signals on its own thread. SIGHUP calls `on_hangup` (reloading
// the API keys). SIGTERM/SIGINT before lumend serves end the process at
// once (nothing is acknowledged yet, so a pod stopped during a slow load
// does not wait for it); afterwards they wake Run() to drain.
class SignalWaiter {
 public:
  SignalWaiter(LogFormat format, std::function<void()> on_hangup)
      : format_(format), on_hangup_(std::move(on_hangup)) {
    thread_ = std::thread([this] { Wait(); });
  }
  // Wakes the waiting thread if no stop signal came (a failed start) and
  // joins it.
  ~SignalWaiter() {
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
    }
    if (!stop_seen_.load()) pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  void MarkServing() {
    absl::MutexLock lock(&mu_);
    serving_ = true;
  }
  // Waits at most `timeout` for SIGTERM or SIGINT: its name, or "" when
  // none came.
  std::string AwaitSignal(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](std::string* s) { return !s->empty(); }, &signal_),
        timeout);
    return signal_;
  }

 private:
  void Wait() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int sig = 0;
    while (true) {
      sigwait(&set, &sig);
      if (sig != SIGHUP) break;
      {
        absl::MutexLock lock(&mu_);
        if (closing_) return;
      }
      if (on_hangup_) on_hangup_();
    }
    stop_seen_.store(true);
    const std::string name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    if (!serving_) {
      LogInfo(format_, absl::StrCat("received ", name,
                                    " while starting; exiting without "
                                    "finishing the start"));
      std::fflush(stderr);
      _exit(0);
    }
    signal_ = name;
  }
  LogFormat format_;
  std::function<void()> on_hangup_;
  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::string signal_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_seen_{false};
  std::thread thread_;
};

int Run(int argc, char** argv) {
  Flags f;
  lumen::FlagSet flags("lumend --model [NAME=]PATH [flags]");
  flags.Repeated("model", &f.models,
                 "GGUF model to serve, PATH or NAME=PATH (repeatable)");
  flags.String("listen", &f.listen, "gRPC address (port 0 picks a free port)");
  flags.String("http-listen", &f.http_listen,
               "OpenAI-compatible HTTP API address (docs/http.md; port 0 "
               "picks a free port); empty disables");
  flags.Int("http-threads", &f.http_threads,
            "HTTP worker threads: each open connection (an idle keep-alive "
            "one too) and each streaming response holds one; more wait (0: "
            "models x (--max-running + --max-queue) + 16)");
  flags.String("metrics-listen", &f.metrics_listen,
               "Prometheus /metrics address; empty disables");
  flags.Int("threads", &f.threads,
            "compute threads of each model's engine (0: the cores the "
            "embedding model does not take, split between the models)");
  flags.Int("embedding-threads", &f.embedding_threads,
            "compute threads of the embedding model (0: a quarter of the "
            "cores, at least 1; from 4 cores up they are not given to "
            "engines)");
  flags.Int("executor-threads", &f.executor_threads,
            "threads for blocking work off the RPC threads (RAG retrieval, "
            "knowledge store, embedding, adapter loading)");
  flags.Int("ctx-size", &f.ctx_size, "context per sequence (0 = the model's)");
  flags.Int("kv-cache-mb", &f.kv_cache_mb,
            "KV cache size per model in MiB (resident soon after start)");
  // f16 (llama.cpp's default too) halves the bytes attention reads per step;
  // README's "KV cache" section has its effect on the reference outputs.
  flags.String("kv-cache-type", &f.kv_cache_type,
               "KV cache element type: f16, f32 or q8_0");
  // 2048 (as vLLM's and llama.cpp's batch defaults): big prompt chunks run
  // the GEMMs near peak; smaller values shorten the decode stalls that a
  // prompt chunk causes for running streams.
  flags.Int("max-batch-tokens", &f.max_batch_tokens,
            "token budget of one engine step");
  // A fixed bound, off by default: the time bound below sizes the chunks
  // for the machine and model at hand (README, "Scheduling").
  flags.Int("decode-prefill-tokens", &f.decode_prefill_tokens,
            "prompt tokens a step that also decodes may take (0: no bound "
            "but --max-batch-tokens); smaller values shorten the running "
            "streams' steps while a prompt is computed");
  // 1 by default: with 16 clients it cut TTFT p50 2.6-4.8x and kept TPOT
  // p99 within 1.2x of p50, at the same throughput within the noise
  // (README, "Scheduling").
  flags.Double("max-decode-stall", &f.max_decode_stall,
               "how much longer than a decode-only step a step that also "
               "computes prompt tokens may take, as a fraction of it, from "
               "measured step times (1: twice as long; 0: no time bound)");
  flags.Int("max-running", &f.max_running, "requests decoding at once");
  flags.Int("max-queue", &f.max_queue,
            "waiting requests before RESOURCE_EXHAUSTED");
  flags.Int("max-request-bytes", &f.max_request_bytes,
            "largest request accepted: gRPC message (RESOURCE_EXHAUSTED) or "
            "HTTP body (413)");
  flags.String("weights", &f.weights,
               "auto (each tensor in its file's type), f32 or int8");
  flags.Repeated("lora", &f.loras, "LoRA adapter NAME=PATH (repeatable)");
  flags.String("data-dir", &f.data_dir,
               "knowledge store directory (SQLite); with --knowledge-store, "
               "where this replica caches its vector indexes; also holds "
               "kernel-choice.txt, the fp32 kernel crossovers measured on "
               "this machine (AVX2 CPUs; on AVX-512 fp32 weights run as "
               "panels and nothing is timed)");
  flags.String("knowledge-store", &f.knowledge_store,
               "postgresql://... to share one knowledge store between "
               "replicas (default: SQLite in --data-dir)");
  flags.String("embedding-model", &f.embedding_model,
               "GGUF embedding model for RAG");
  flags.String("api-keys", &f.api_keys, "file of 'KEY TENANT ROLE' lines");
  flags.String("tls-cert", &f.tls_cert, "PEM certificate (with --tls-key)");
  flags.String("tls-key", &f.tls_key, "PEM private key");
  flags.String("tls-client-ca", &f.tls_client_ca,
               "PEM CA certificates: clients must present a certificate they "
               "signed (mutual TLS, gRPC and HTTPS; needs --tls-cert)");
  flags.String("log-format", &f.log_format, "text or json");
  flags.String("chat-template", &f.chat_template,
               "auto (the model file's own template; the family table only "
               "when it has none), a family (chatml, llama2, llama3, "
               "mistral, gemma, phi3, zephyr, ...), a named template of the "
               "file, or a path to a .jinja file");
  flags.Bool("share-prefix-cache", &f.share_prefix_cache,
             "let tenants reuse each other's cached prompt prefixes (off: a "
             "tenant's KV cache never serves another's prompt)");
  flags.Double("shutdown-grace", &f.shutdown_grace,
               "seconds in-flight requests get on SIGTERM");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "lumend: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (f.log_format != "text" && f.log_format != "json") {
    std::fprintf(stderr, "lumend: --log-format must be text or json\n");
    return 2;
  }
  const LogFormat log_format =
      f.log_format == "json" ? LogFormat::kJson : LogFormat::kText;
  auto fail = [&](const std::string& msg) {
    LogInfo(log_format, "error: " + msg);
    return 1;
  };
  if (f.models.empty()) return fail("--model is required (see --help)");
  if (f.max_batch_tokens <= 0 || f.max_running <= 0 || f.max_queue <= 0 ||
      f.kv_cache_mb <= 0 || f.executor_threads <= 0 || f.threads < 0 ||
      f.max_request_bytes <= 0 || f.max_request_bytes > (1 << 30) ||
      f.embedding_threads < 0 || f.http_threads < 0 ||
      f.decode_prefill_tokens < 0 || !(f.max_decode_stall >= 0)) {
    return fail(
        "--max-batch-tokens, --max-running, --max-queue, --kv-cache-mb and "
        "--executor-threads must be > 0, --threads, --embedding-threads, "
        "--http-threads, --decode-prefill-tokens and --max-decode-stall >= 0, "
        "--max-request-bytes in (0, 1 GiB]");
  }
  auto kv_element = lumen::engine::ParseKvElement(f.kv_cache_type);
  if (!kv_element.ok())
    return fail("--kv-cache-type: " +
                std::string(kv_element.status().message()));
  // TLS files are read before any model loads: a typo fails at once.
  if (f.tls_cert.empty() != f.tls_key.empty())
    return fail("--tls-cert and --tls-key go together");
  if (!f.tls_client_ca.empty() && f.tls_cert.empty())
    return fail("--tls-client-ca needs --tls-cert and --tls-key");
  std::string tls_cert_pem, tls_key_pem, tls_client_ca_pem;
  for (auto [flag, path, out] :
       {std::tuple{"tls-cert", &f.tls_cert, &tls_cert_pem},
        std::tuple{"tls-key", &f.tls_key, &tls_key_pem},
        std::tuple{"tls-client-ca", &f.tls_client_ca, &tls_client_ca_pem}}) {
    if (path->empty()) continue;
    auto pem = ReadPem(flag, *path);
    if (!pem.ok()) return fail(std::string(pem.status().message()));
    *out = std::move(*pem);
  }
  auto weights = lumen::engine::ParseWeightMode(f.weights);
  if (!weights.ok()) return fail(std::string(weights.status().message()));
  lumen::server::PipelineOptions pipeline_options;
  pipeline_options.share_prefix_cache = f.share_prefix_cache;
  const ThreadPlan threads =
      PlanThreads(f, omp_get_num_procs(), !f.embedding_model.empty());
  {
    // Every engine and embedding lane keeps its OpenMP team. libgomp counts
    // the first thread plus each team's workers (a team of n has n - 1), and
    // past the cores it cuts every wait to a ~100-spin (README, "Served
    // decode").
    const int64_t models = std::max<int64_t>(1, f.models.size());
    int64_t gomp_threads = 1 + models * (threads.engine - 1);
    if (!f.embedding_model.empty()) {
      for (const int team :
           lumen::server::EmbeddingWorker::LaneTeams(threads.embedding)) {
        gomp_threads += team - 1;
      }
    }
    if (gomp_threads > omp_get_num_procs()) {
      LogInfo(
          log_format,
          absl::StrCat(
              "warning: with these --threads and --embedding-threads libgomp "
              "counts ",
              gomp_threads, " threads on ", omp_get_num_procs(),
              " cores: every OpenMP wait then spins at most 100 times "
              "(with lumen's default wait policy) before sleeping, "
              "and decode runs slower"));
    }
  }

  std::unique_ptr<lumen::server::Metrics> metrics;
  if (!f.metrics_listen.empty()) {
    auto m = lumen::server::Metrics::Create(f.metrics_listen);
    if (!m.ok()) return fail(std::string(m.status().message()));
    metrics = std::move(*m);
    const std::string mhost =
        f.metrics_listen.substr(0, f.metrics_listen.rfind(':'));
    LogInfo(log_format, absl::StrCat("metrics on http://", mhost, ":",
                                     metrics->port(), "/metrics"));
  }
  auto auth = std::make_unique<lumen::server::Authenticator>();
  if (!f.api_keys.empty()) {
    auto a = lumen::server::Authenticator::FromFile(f.api_keys);
    if (!a.ok()) return fail(std::string(a.status().message()));
    auth = std::move(*a);
  }
  // SIGHUP re-reads --api-keys; requests in flight keep their keys' state.
  SignalWaiter signals(log_format, [&auth, &f, log_format] {
    if (f.api_keys.empty()) {
      LogInfo(log_format, "received SIGHUP; no --api-keys file to reload");
      return;
    }
    absl::Status s = auth->Reload();
    LogInfo(log_format,
            s.ok() ? absl::StrCat("received SIGHUP; reloaded ", f.api_keys)
                   : absl::StrCat("received SIGHUP; kept the previous keys: ",
                                  s.message()));
  });
  std::unique_ptr<lumen::server::EmbeddingWorker> embedder;
  if (!f.embedding_model.empty()) {
    auto e = lumen::server::EmbeddingWorker::Load(f.embedding_model,
                                                  threads.embedding);
    if (!e.ok()) {
      return fail(absl::StrCat("cannot load --embedding-model ",
                               f.embedding_model, ": ", e.status().message()));
    }
    embedder = std::move(*e);
  }
  lumen::retrieval::StoreOptions store_options;
  store_options.embedder = embedder.get();
  if (f.knowledge_store.empty()) {
    store_options.location = f.data_dir;
  } else if (lumen::retrieval::IsPostgresLocation(f.knowledge_store)) {
    store_options.location = f.knowledge_store;
    store_options.index_dir = f.data_dir;
  } else {
    return fail("--knowledge-store must be a postgresql:// URI");
  }
  auto store = lumen::retrieval::KnowledgeStore::Open(store_options);
  if (!store.ok()) {
    return fail(
        absl::StrCat("cannot open the knowledge store ",
                     lumen::retrieval::RedactLocation(store_options.location),
                     ": ", store.status().message()));
  }
  if (metrics) metrics->SetRagDocuments((*store)->TotalDocuments());

  // The engines' observers outlive the registry, whose engines call them
  // until they stop.
  lumen::server::RequestLog request_log(log_format);
  std::vector<std::unique_ptr<lumen::server::ObserverList>> observers;
  lumen::server::ModelRegistry registry;
  lumen::server::AdapterRegistry adapters(&registry);
  lumen::server::Executor executor("executor",
                                   static_cast<int>(f.executor_threads), 4096);
  lumen::server::GeneratePipeline pipeline(&registry, &adapters, store->get(),
                                           &executor, metrics.get(),
                                           pipeline_options);
  lumen::server::InferenceOptions inference_options;
  inference_options.auth = auth.get();
  inference_options.pipeline = &pipeline;
  inference_options.executor = &executor;
  inference_options.embedder = embedder.get();
  lumen::server::InferenceService inference(&registry, inference_options);
  lumen::server::KnowledgeService knowledge(store->get(), auth.get(), &executor,
                                            metrics.get());
  lumen::server::AdminService admin(&registry, &adapters, auth.get(), &executor,
                                    metrics.get());

  // Requests that do not parse never reach a handler: counted and logged
  // here.
  auto on_unparsable = [&request_log, m = metrics.get()](
                           const google::protobuf::MethodDescriptor& method) {
    const std::string path =
        absl::StrCat("/", method.service()->full_name(), "/", method.name());
    if (m) m->CountUnparsable(path);
    request_log.OnUnparsable(path);
  };
  inference.SetUnparsableObserver(on_unparsable);
  knowledge.SetUnparsableObserver(on_unparsable);
  admin.SetUnparsableObserver(on_unparsable);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::InsecureServerCredentials();
  if (!f.tls_cert.empty()) {
    // With --tls-client-ca the handshake fails for a client without a
    // certificate signed by one of those CAs (the client sees UNAVAILABLE).
    grpc::SslServerCredentialsOptions ssl(
        f.tls_client_ca.empty()
            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = tls_client_ca_pem;
    ssl.pem_key_cert_pairs.push_back({tls_key_pem, tls_cert_pem});
    creds = grpc::SslServerCredentials(ssl);
  }
  int port = 0;
  builder.AddListeningPort(f.listen, creds, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(f.max_request_bytes));
  builder.RegisterService(&inference);
  builder.RegisterService(&admin);
  builder.RegisterService(&knowledge);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return fail("cannot listen on " + f.listen);
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);
  const std::string host = f.listen.substr(0, f.listen.rfind(':'));
  LogInfo(log_format, absl::StrCat("listening on ", host, ":", port));

  // The OpenAI-compatible HTTP API: the same pipeline, keys and executor.
  // Every request in flight (running or queued) holds an HTTP worker, so
  // the default pool lets the engines' limits, not the pool, refuse work.
  std::unique_ptr<lumen::server::http::HttpServer> http;
  if (!f.http_listen.empty()) {
    lumen::server::http::HttpServerOptions http_options;
    http_options.address = f.http_listen;
    http_options.tls_cert = f.tls_cert;
    http_options.tls_key = f.tls_key;
    http_options.tls_client_ca = f.tls_client_ca;
    http_options.max_body_bytes = static_cast<size_t>(f.max_request_bytes);
    const int64_t num_models = static_cast<int64_t>(f.models.size());
    http_options.threads = static_cast<int>(
        f.http_threads > 0
            ? f.http_threads
            : std::min<int64_t>(
                  4096, num_models * (f.max_running + f.max_queue) + 16));
    lumen::server::http::HttpServices services;
    services.models = &registry;
    services.pipeline = &pipeline;
    services.auth = auth.get();
    services.executor = &executor;
    services.embedder = embedder.get();
    if (embedder) {
      services.embedding_model =
          f.embedding_model.substr(f.embedding_model.rfind('/') + 1);
      if (absl::EndsWith(services.embedding_model, ".gguf"))
        services.embedding_model.resize(services.embedding_model.size() - 5);
    }
    auto h = lumen::server::http::HttpServer::Start(http_options, services);
    if (!h.ok()) {
      server->Shutdown();
      executor.Shutdown();
      return fail(std::string(h.status().message()));
    }
    http = std::move(*h);
    const std::string http_host =
        f.http_listen.substr(0, f.http_listen.rfind(':'));
    LogInfo(log_format, absl::StrCat("OpenAI-compatible HTTP API on ",
                                     http->tls() ? "https://" : "http://",
                                     http_host, ":", http->port(), "/v1 (",
                                     http_options.threads, " worker threads)"));
  }
  LogInfo(log_format,
          absl::StrCat(
              "knowledge store in ",
              f.knowledge_store.empty()
                  ? f.data_dir
                  : absl::StrCat(
                        lumen::retrieval::RedactLocation(f.knowledge_store),
                        " (vector indexes cached in ", f.data_dir, ")"),
              embedder ? absl::StrCat(" (vector + keyword search, embeddings "
                                      "of ",
                                      embedder->dim(), " dims from ",
                                      f.embedding_model, ", ",
                                      threads.embedding, " threads)")
                       : std::string(" (keyword search only: no "
                                     "--embedding-model)")));
  if ((!IsLoopback(f.listen) ||
       (!f.http_listen.empty() && !IsLoopback(f.http_listen))) &&
      !auth->enabled()) {
    LogInfo(
        log_format,
        "warning: listening beyond loopback without --api-keys: every client "
        "can use every model and collection");
  }

  lumen::server::ModelLoadOptions load;
  load.weights = *weights;
  load.ctx_size = f.ctx_size;
  load.chat_template = f.chat_template;
  load.engine.max_batch_tokens = static_cast<int32_t>(f.max_batch_tokens);
  load.engine.max_running = static_cast<int32_t>(f.max_running);
  load.engine.decode_prefill_tokens = static_cast<int32_t>(
      std::min(f.decode_prefill_tokens, f.max_batch_tokens));
  load.engine.max_decode_stall = f.max_decode_stall;
  load.engine.max_queue = static_cast<int32_t>(f.max_queue);
  load.engine.kv_cache_bytes = f.kv_cache_mb << 20;
  load.engine.kv_element = *kv_element;
  load.engine.num_threads = threads.engine;
  load.kernel_choice_file = f.data_dir + "/kernel-choice.txt";
  auto stop_serving = [&] {
    if (http) http->Stop(absl::ZeroDuration());
    server->Shutdown();
    executor.Shutdown();
    registry.StopAll();
  };
  for (const std::string& spec : f.models) {
    std::string name, path = spec;
    if (size_t eq = spec.find('='); eq != std::string::npos) {
      name = spec.substr(0, eq);
      path = spec.substr(eq + 1);
    } else {
      name = path.substr(path.rfind('/') + 1);
      if (absl::EndsWith(name, ".gguf")) name.resize(name.size() - 5);
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto& obs =
        observers.emplace_back(std::make_unique<lumen::server::ObserverList>());
    obs->Add(&request_log);
    if (metrics) obs->Add(metrics->ObserverFor(name));
    auto loaded = registry.Load(name, path, load, obs.get());
    if (!loaded.ok()) {
      stop_serving();
      return fail(absl::StrCat("cannot load model ", name, " from ", path, ": ",
                               loaded.status().message()));
    }
    const lumen::server::ServedModel* m = *loaded;
    const auto& t = m->engine->model();
    LogInfo(
        log_format,
        absl::StrCat("loaded model ", name, " (", t.config().arch, ", ",
                     m->parameters,
                     // The type each matrix is served in ("q4_K 36, q6_K 7"): a
                     // file mixes them, so one word would misname most of them.
                     " parameters, weights [", t.WeightsSummary(), "], ",
                     t.resident_bytes().total() >> 20, " MiB, context ",
                     t.max_context(), ", KV cache ",
                     static_cast<int64_t>(m->engine->Stats().kv_blocks_total) *
                         m->engine->options().block_size,
                     " tokens, ", threads.engine, " threads, chat template ",
                     m->chat_template->description(), ", kernel choice ",
                     t.kernel_choice_source(), ") in ",
                     LoadTimeSummary(std::chrono::duration<double>(
                                         std::chrono::steady_clock::now() - t0)
                                         .count(),
                                     m->load_seconds)));
  }
  registry.MarkModelsLoaded();
  // --lora adapters apply to the first (default) model; others can be
  // loaded for any model through Admin.LoadAdapter.
  for (const std::string& spec : f.loras) {
    auto flag = lumen::server::ParseLoraFlag(spec);
    if (!flag.ok()) {
      stop_serving();
      return fail(std::string(flag.status().message()));
    }
    auto entry = adapters.Load(flag->first, flag->second, "");
    if (!entry.ok()) {
      stop_serving();
      return fail(absl::StrCat("cannot load --lora ", spec, ": ",
                               entry.status().message()));
    }
    LogInfo(log_format,
            absl::StrCat("loaded adapter ", entry->name, " for model ",
                         entry->model, " (rank ", entry->adapter->max_rank(),
                         ", alpha ", entry->adapter->alpha(), ", targets ",
                         entry->adapter->TargetSummary(), ", ",
                         entry->adapter->num_parameters(), " parameters)"));
  }
  registry.MarkReady();
  health->SetServingStatus(true);
  if (http) http->SetHealth(lumen::server::http::HttpServer::Health::kServing);
  signals.MarkServing();
  LogInfo(log_format, "serving");

  std::string signal;
  while ((signal = signals.AwaitSignal(absl::Seconds(30))).empty()) {
    // glibc keeps memory freed by the many request threads in their arenas;
    // giving the free pages back keeps a long-running daemon's RSS near what
    // it uses (a soak run's arenas grew 8 MB in 140 s while the bytes in use
    // grew 1.8 MB). Costs a few ms on this thread, never the engine's.
    malloc_trim(0);
  }
  LogInfo(log_format, absl::StrCat("received ", signal, ", draining (grace ",
                                   f.shutdown_grace, " s)"));
  health->SetServingStatus(false);
  if (http) http->SetHealth(lumen::server::http::HttpServer::Health::kDraining);
  registry.BeginDrain();
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(f.shutdown_grace * 1000));
  while (registry.InFlight() > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int64_t left = registry.InFlight();
  registry.StopAll();  // cancels whatever is left; output stages deliver it
  // HTTP streams write what the output stages delivered, then end.
  if (http) http->Stop(absl::Seconds(2));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  executor.Shutdown();
  LogInfo(log_format, absl::StrCat("stopped (", left,
                                   " requests cancelled at the deadline)"));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  lumen::UseLumenOpenMpWaitPolicy(argv);
  // Signals are taken synchronously by SignalWaiter's thread: block them
  // before any other thread exists so every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A long-running daemon's heap, against glibc's defaults: a fixed mmap
  // threshold (the default one rises after a large block is freed, and
  // later large blocks then fragment the heap for good) and few arenas
  // (hundreds of request threads otherwise spread freed memory over 16).
  // A 30-minute soak grew RSS 7% with the bytes in use flat.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_ARENA_MAX, 4);
  return Run(argc, argv);
}
