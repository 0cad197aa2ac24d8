#include "tools/lumen/bench_http.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace lumen::tools {

using Json = nlohmann::json;

struct HttpBenchClient::Impl {
  explicit Impl(const std::string& host, int port) : client(host, port) {}
  httplib::Client client;
  httplib::Headers headers;
};

HttpBenchClient::HttpBenchClient(const std::string& addr,
                                 const std::string& api_key) {
  const size_t colon = addr.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(addr.substr(colon + 1), &port)) {
    port = 8080;
  }
  impl_ = std::make_unique<Impl>(addr.substr(0, colon), port);
  impl_->client.set_keep_alive(true);
  impl_->client.set_tcp_nodelay(true);
  impl_->client.set_read_timeout(600, 0);
  if (!api_key.empty())
    impl_->headers.emplace("Authorization", "Bearer " + api_key);
}

HttpBenchClient::~HttpBenchClient() = default;

namespace {
// How soon a send on a closed kept-alive connection fails: the peer's reset
// arrives within a round trip, far below any read timeout.
constexpr auto kStaleFailure = std::chrono::seconds(1);
}  // namespace

BenchStream HttpBenchClient::Stream(const std::string& model,
                                    const std::string& prompt,
                                    int64_t max_tokens) {
  Json body = {
      {"prompt", prompt}, {"max_tokens", max_tokens},
      {"temperature", 0}, {"ignore_eos", true},
      {"stream", true},   {"stream_options", {{"include_usage", true}}}};
  if (!model.empty()) body["model"] = model;
  BenchStream out;
  std::string pending;    // bytes of an event not yet complete
  bool received = false;  // any byte of the response body
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.headers = impl_->headers;
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  req.response_handler = [&](const httplib::Response&) {
    received = true;  // the server has taken the request
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    received = true;
    pending.append(data, n);
    size_t end;
    while ((end = pending.find("\n\n")) != std::string::npos) {
      // "data: {...}" or "data: [DONE]"
      const std::string event = pending.substr(6, end - 6);
      pending.erase(0, end + 2);
      if (event == "[DONE]") continue;
      Json e = Json::parse(event, nullptr, false);
      if (!e.is_object()) continue;
      if (e.contains("error")) {
        out.error = "STREAM_ERROR";
        continue;
      }
      const Json& choices = e["choices"];
      if (!out.first_text && choices.is_array() && !choices.empty() &&
          choices[0]["text"].is_string() &&
          !choices[0]["text"].get_ref<const std::string&>().empty()) {
        out.first_text = std::chrono::steady_clock::now();
      }
      if (e.contains("usage") && e["usage"].is_object() &&
          e["usage"]["completion_tokens"].is_number_integer()) {
        out.completion_tokens = e["usage"]["completion_tokens"].get<int64_t>();
      }
    }
    return true;
  };
  const auto sent = std::chrono::steady_clock::now();
  httplib::Result r = impl_->client.send(req);
  // A kept-alive connection the server has since closed (llama-server
  // does, between requests) fails at once, before the status line: that
  // request was never taken, so it is sent again, once, on a new
  // connection. A failure after the headers, or a read timeout, is not.
  if (!r &&
      (r.error() == httplib::Error::Read ||
       r.error() == httplib::Error::Write) &&
      !received && std::chrono::steady_clock::now() - sent < kStaleFailure) {
    out.resent = true;
    r = impl_->client.send(req);
  }
  if (!r) {
    out.error = absl::StrCat("HTTP_", httplib::to_string(r.error()));
  } else if (r->status != 200) {
    out.error = absl::StrCat("HTTP_", r->status);
  }
  return out;
}

absl::StatusOr<int64_t> HttpBenchClient::CountPromptTokens(
    const std::string& model, const std::string& prompt) {
  Json body = {{"prompt", prompt}, {"max_tokens", 1}};
  if (!model.empty()) body["model"] = model;
  httplib::Result r = impl_->client.Post("/v1/completions", impl_->headers,
                                         body.dump(), "application/json");
  if (!r) {
    return absl::UnavailableError(
        absl::StrCat("HTTP request failed: ", httplib::to_string(r.error())));
  }
  Json j = Json::parse(r->body, nullptr, false);
  if (r->status != 200 || !j.is_object() || !j["usage"].is_object() ||
      !j["usage"]["prompt_tokens"].is_number_integer()) {
    return absl::UnknownError(
        absl::StrCat("HTTP ", r->status, ": ", r->body.substr(0, 300)));
  }
  return j["usage"]["prompt_tokens"].get<int64_t>();
}

}  // namespace lumen::tools
