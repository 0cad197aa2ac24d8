#include "server/http/http_server.h"

#include <sys/socket.h>

#include <ctime>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/http/completion_handler.h"
#include "server/http/embeddings_handler.h"
#include "server/http/http_reply.h"
#include "server/http/models_handler.h"

namespace lumen::server::http {

namespace {

// Connections the kernel queues before httplib accepts them.
constexpr int kListenBacklog = 1024;

struct HostPort {
  std::string host;
  int port = 0;
};

absl::StatusOr<HostPort> ParseAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  HostPort hp;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &hp.port) || hp.port < 0 ||
      hp.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen '", address,
                     "' is not HOST:PORT (e.g. 127.0.0.1:8080)"));
  }
  hp.host = address.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']')
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  return hp;
}

// httplib listens with a backlog of 5 connections (CPPHTTPLIB_LISTEN_BACKLOG,
// fixed when Debian built the library): a burst of clients beyond that
// overflows the kernel's accept queue, and some of them fail. Listening
// again on the bound socket widens the queue (Linux takes the new backlog).
template <class Base>
class WideBacklogServer : public Base {
 public:
  using Base::Base;
  // Binds like httplib (port 0: any); the port, or -1.
  int BindWide(const std::string& host, int port, int backlog) {
    const int bound = port == 0 ? this->bind_to_any_port(host)
                                : (this->bind_to_port(host, port) ? port : -1);
    if (bound > 0 && ::listen(this->svr_sock_, backlog) != 0) return -1;
    return bound;
  }
};

// application/json with any parameters (charset=utf-8), or no type at all.
bool IsJsonContentType(const std::string& value) {
  absl::string_view type = value;
  if (size_t semi = type.find(';'); semi != absl::string_view::npos)
    type = type.substr(0, semi);
  type = absl::StripAsciiWhitespace(type);
  return type.empty() || absl::EqualsIgnoreCase(type, "application/json");
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    HttpServerOptions options, HttpServices services) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->options_ = std::move(options);
  s->services_ = std::move(services);
  s->created_ = static_cast<int64_t>(std::time(nullptr));
  absl::StatusOr<std::unique_ptr<DisconnectWatcher>> watcher =
      DisconnectWatcher::Create();
  if (!watcher.ok()) return watcher.status();
  s->disconnects_ = std::move(*watcher);
  s->services_.disconnects = s->disconnects_.get();
  absl::StatusOr<HostPort> hp = ParseAddress(s->options_.address);
  if (!hp.ok()) return hp.status();
  if (s->options_.tls_cert.empty() != s->options_.tls_key.empty())
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  if (!s->options_.tls_client_ca.empty() && s->options_.tls_cert.empty())
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert");
  // Binds once the routes and limits are set.
  std::function<int()> bind;
  if (!s->options_.tls_cert.empty()) {
    // httplib verifies the peer and fails the handshake without a client
    // certificate when given a CA file (SSL_VERIFY_FAIL_IF_NO_PEER_CERT).
    const std::string& ca = s->options_.tls_client_ca;
    auto tls = std::make_unique<WideBacklogServer<httplib::SSLServer>>(
        s->options_.tls_cert.c_str(), s->options_.tls_key.c_str(),
        ca.empty() ? nullptr : ca.c_str());
    if (!tls->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot load --tls-cert ", s->options_.tls_cert, " and --tls-key ",
          s->options_.tls_key, ca.empty() ? "" : " and --tls-client-ca ", ca,
          " for HTTPS"));
    }
    bind = [srv = tls.get(), hp = *hp] {
      return srv->BindWide(hp.host, hp.port, kListenBacklog);
    };
    s->server_ = std::move(tls);
    s->tls_ = true;
  } else {
    auto plain = std::make_unique<WideBacklogServer<httplib::Server>>();
    bind = [srv = plain.get(), hp = *hp] {
      return srv->BindWide(hp.host, hp.port, kListenBacklog);
    };
    s->server_ = std::move(plain);
  }
  httplib::Server& server = *s->server_;
  const int threads = std::max(1, s->options_.threads);
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  // Without it, Nagle's algorithm holds back small SSE writes.
  server.set_tcp_nodelay(true);
  server.set_keep_alive_timeout(s->options_.keep_alive_seconds);
  server.set_keep_alive_max_count(
      static_cast<size_t>(std::max(1, s->options_.keep_alive_requests)));
  server.set_read_timeout(s->options_.read_timeout_seconds, 0);
  server.set_write_timeout(s->options_.write_timeout_seconds, 0);
  server.set_payload_max_length(s->options_.max_body_bytes);
  s->RegisterRoutes();
  s->port_ = bind();
  if (s->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", s->options_.address, " (HTTP)"));
  }
  s->listener_ =
      std::thread([srv = s->server_.get()] { srv->listen_after_bind(); });
  return s;
}

HttpServer::~HttpServer() { Stop(absl::ZeroDuration()); }

void HttpServer::Stop(absl::Duration grace) {
  stopping_.store(true);
  health_.store(Health::kDraining);
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](int* active) { return *active == 0; }, &active_calls_),
        grace);
  }
  // Closes the listening socket; workers end their connections after the
  // current request (a stream stops at its next wait) and are joined when
  // listen_after_bind returns.
  if (server_) server_->stop();
  if (listener_.joinable()) listener_.join();
}

std::shared_ptr<void> HttpServer::EnterCall() {
  absl::MutexLock lock(&mu_);
  ++active_calls_;
  return std::shared_ptr<void>(this, [](HttpServer* s) {
    absl::MutexLock lock(&s->mu_);
    --s->active_calls_;
  });
}

bool HttpServer::Authenticate(const httplib::Request& req,
                              httplib::Response& res, Caller* principal) const {
  absl::StatusOr<Caller> p =
      services_.auth->AuthenticateHeader(req.get_header_value("Authorization"));
  if (!p.ok()) {
    SendStatus(res, p.status());
    return false;
  }
  *principal = *p;
  return true;
}

void HttpServer::WithJsonBody(
    const httplib::Request& req, httplib::Response& res,
    const httplib::ContentReader& reader,
    const std::function<void(const Caller&, const Json&)>& handle) {
  const std::string content_type = req.get_header_value("Content-Type");
  const bool json = IsJsonContentType(content_type);
  // The whole body is read even when it is refused, so the connection can
  // serve its next request. Beyond the limit it is drained, not kept; a
  // client that goes on sending far beyond it is cut off.
  std::string body;
  bool too_large = false;
  const size_t max = options_.max_body_bytes;
  size_t received = 0;
  auto keep = [&](const char* data, size_t n) {
    received += n;
    if (body.size() + n > max) too_large = true;
    if (!too_large && json) body.append(data, n);
    return received <= 4 * max;
  };
  bool read = false;
  if (req.is_multipart_form_data()) {
    read = reader([](const httplib::MultipartFormData&) { return true; },
                  [&](const char* data, size_t n) { return keep(data, n); });
  } else {
    read = reader(keep);
  }
  if (too_large || res.status == 413) {
    return SendError(res, HttpErrorOf(413, absl::StrCat("the request body "
                                                        "exceeds ",
                                                        max, " bytes")));
  }
  if (!read) {
    return SendError(res, HttpErrorOf(400,
                                      "the request body could not be read "
                                      "(malformed chunked encoding or a "
                                      "closed connection)"));
  }
  Caller principal;
  if (!Authenticate(req, res, &principal)) return;
  if (!json) {
    return SendError(res, HttpErrorOf(400, absl::StrCat("Content-Type must be "
                                                        "application/json (got "
                                                        "'",
                                                        content_type, "')")));
  }
  absl::StatusOr<Json> parsed = ParseJson(body);
  if (!parsed.ok()) return SendStatus(res, parsed.status());
  if (!parsed->is_object()) {
    return SendStatus(res, absl::InvalidArgumentError(absl::StrCat(
                               "the body must be a JSON object (got ",
                               JsonTypeName(*parsed), ")")));
  }
  handle(principal, *parsed);
}

void HttpServer::RegisterRoutes() {
  httplib::Server& server = *server_;
  server.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!stopping_.load() || req.path == "/health")
          return httplib::Server::HandlerResponse::Unhandled;
        SendStatus(res, absl::UnavailableError("lumend is shutting down"));
        return httplib::Server::HandlerResponse::Handled;
      });
  // Errors httplib answers itself (no route, a body over the limit, a
  // malformed request line) get OpenAI's error object too.
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        std::string message;
        switch (res.status) {
          case 404:
            message = absl::StrCat("no route for ", req.method, " ", req.path,
                                   " (see docs/http.md)");
            break;
          case 413:
            message = "the request body is too large";
            break;
          case 414:
            message = "the request URI is too long";
            break;
          case 400:
            message = "malformed HTTP request";
            break;
          default:
            message = absl::StrCat("HTTP error ", res.status);
        }
        SendError(res, HttpErrorOf(res.status, message));
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler([](const httplib::Request&,
                                  httplib::Response& res,
                                  std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    SendStatus(res,
               absl::InternalError(absl::StrCat("internal error: ", what)));
  });

  server.Get("/health",
             [this](const httplib::Request&, httplib::Response& res) {
               switch (health_.load()) {
                 case Health::kServing:
                   return SendJson(res, 200, {{"status", "ok"}});
                 case Health::kLoading:
                   return SendJson(res, 503, {{"status", "loading"}});
                 case Health::kDraining:
                   return SendJson(res, 503, {{"status", "draining"}});
               }
             });
  server.Get("/v1/models",
             [this](const httplib::Request& req, httplib::Response& res) {
               Caller p;
               if (Authenticate(req, res, &p))
                 HandleListModels(services_, created_, res);
             });
  server.Get("/v1/models/(.+)",
             [this](const httplib::Request& req, httplib::Response& res) {
               Caller p;
               if (Authenticate(req, res, &p))
                 HandleGetModel(services_, created_, req.matches[1], res);
             });
  for (auto [path, endpoint] :
       {std::pair<const char*, Endpoint>{"/v1/chat/completions",
                                         Endpoint::kChatCompletions},
        {"/v1/completions", Endpoint::kCompletions}}) {
    server.Post(path, [this, endpoint = endpoint](
                          const httplib::Request& req, httplib::Response& res,
                          const httplib::ContentReader& reader) {
      std::shared_ptr<void> in_flight = EnterCall();
      WithJsonBody(req, res, reader, [&](const Caller& p, const Json& body) {
        HandleCompletion(services_, endpoint, p, body, in_flight, req, res);
      });
    });
  }
  server.Post("/v1/embeddings", [this](const httplib::Request& req,
                                       httplib::Response& res,
                                       const httplib::ContentReader& reader) {
    std::shared_ptr<void> in_flight = EnterCall();
    WithJsonBody(req, res, reader, [&](const Caller&, const Json& body) {
      HandleEmbeddings(services_, body, res);
    });
  });
}

}  // namespace lumen::server::http
