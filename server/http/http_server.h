#pragma once
// HttpServer: lumend's OpenAI-compatible HTTP API (docs/http.md) on
// cpp-httplib: HTTP/1.1 with keep-alive, chunked responses for streaming,
// HTTPS with the same certificate as gRPC, and limits on bodies, headers
// (httplib's 8 KiB) and idle or slow connections.
//
//   GET  /health                200 serving, 503 loading or draining
//   GET  /v1/models[/{id}]      models_handler.h
//   POST /v1/completions        completion_handler.h
//   POST /v1/chat/completions   completion_handler.h
//   POST /v1/embeddings         embeddings_handler.h
//
// Threads: httplib serves each connection on one worker of a fixed pool
// (`threads`) from accept to close, keep-alive included, and a streaming
// response holds its worker until it ends. The pool therefore bounds the
// connections served at once; further connections wait, accepted, in
// arrival order until a worker is free. Workers block only on their own
// connection and request, never on the engine: the engine's output thread
// only signals them. One listener thread accepts; Stop joins every thread.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "httplib.h"
#include "server/http/http_services.h"
#include "server/http/json_fields.h"

namespace lumen::server::http {

struct HttpServerOptions {
  // HOST:PORT ("[::1]:8080" for IPv6); port 0 picks a free port.
  std::string address = "127.0.0.1:8080";
  // PEM files: HTTPS when both are set.
  std::string tls_cert, tls_key;
  // PEM CA certificates (HTTPS only): the TLS handshake requires a client
  // certificate signed by one of them (mutual TLS, as gRPC's).
  std::string tls_client_ca;
  // Worker threads, the connections served at once (see above).
  int threads = 64;
  // Request bodies above this are refused with 413.
  size_t max_body_bytes = size_t{8} << 20;
  // An idle keep-alive connection is closed after this long, and any
  // connection after this many requests.
  int keep_alive_seconds = 5;
  int keep_alive_requests = 100;
  // Reading a request / writing a response waits at most this long for the
  // client (a streaming client that stops reading is cut off and its
  // request aborted).
  int read_timeout_seconds = 30;
  int write_timeout_seconds = 30;
};

class HttpServer {
 public:
  enum class Health { kLoading, kServing, kDraining };

  // Binds and serves on its own threads; /health says 503 until
  // SetHealth(kServing). InvalidArgument for a malformed address or a
  // certificate/key that cannot be loaded, Unavailable when the address
  // cannot be bound. `services` must outlive the server.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      HttpServerOptions options, HttpServices services);
  ~HttpServer();  // Stop(absl::ZeroDuration())

  int port() const { return port_; }
  bool tls() const { return tls_; }
  // Any thread.
  void SetHealth(Health health) { health_.store(health); }

  // Refuses new requests (503), gives the responses in progress up to
  // `grace` to end (cancelled requests end at once), then closes every
  // connection and joins the threads. Idempotent; any thread but a worker.
  void Stop(absl::Duration grace) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  HttpServer() = default;
  void RegisterRoutes();
  // Reads the body (at most max_body_bytes kept), authenticates and parses
  // it as a JSON object, then calls `handle`; errors are answered here.
  void WithJsonBody(
      const httplib::Request& req, httplib::Response& res,
      const httplib::ContentReader& reader,
      const std::function<void(const Caller&, const Json&)>& handle);
  // Answers an error and false when the request may not go on.
  bool Authenticate(const httplib::Request& req, httplib::Response& res,
                    Caller* principal) const;
  // A token held while a response is in progress (Stop waits for them).
  std::shared_ptr<void> EnterCall() ABSL_LOCKS_EXCLUDED(mu_);

  HttpServerOptions options_;
  HttpServices services_;
  int64_t created_ = 0;  // Unix seconds, for model objects
  // Outlives server_: the workers' watches end before it does.
  std::unique_ptr<DisconnectWatcher> disconnects_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  int port_ = 0;
  bool tls_ = false;
  std::atomic<Health> health_{Health::kLoading};
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  int active_calls_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lumen::server::http
