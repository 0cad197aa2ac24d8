#include "server/http/completion_handler.h"

#include <ctime>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/http/generate_call.h"
#include "server/http/http_reply.h"
#include "server/http/openai_response.h"
#include "server/http/request_socket.h"
#include "server/http/sse_writer.h"
#include "server/request_builder.h"

namespace lumen::server::http {

namespace {

// A refusal in the client's terms: the field it named (OpenAI's spelling)
// and, for NOT_FOUND, which of model, adapter or collection is missing.
HttpError RefusalOf(const HttpServices& services, const OpenAiRequest& r,
                    const absl::Status& status) {
  std::string param = r.ParamOf(FieldOf(status));
  std::string code;
  if (status.code() == absl::StatusCode::kNotFound && param.empty()) {
    const lumen::v1::GenerateRequest& g = r.request;
    auto model = services.models->Find(g.model());
    if (!model.ok() && model.status().code() == absl::StatusCode::kNotFound) {
      param = "model";
      code = "model_not_found";
    } else if (!g.adapter().empty() &&
               absl::StrContains(status.message(), g.adapter())) {
      param = "adapter";
      code = "adapter_not_found";
    } else if (g.rag().collections_size() > 0) {
      param = "rag.collections";
      code = "collection_not_found";
    }
  }
  return ToHttpError(status, param, code);
}

// What the streaming content provider keeps between its calls.
struct StreamState {
  std::shared_ptr<GenerateCall> call;
  const GenerateStart* start = nullptr;
  CompletionFormatter formatter;
  bool include_usage = false;
  bool first_sent = false;
  std::shared_ptr<void> in_flight;
  // Ends with the response, before httplib closes or reuses the socket.
  DisconnectWatcher::Watch client;
};

// Aborts `call` as soon as the client closes the request's connection.
DisconnectWatcher::Watch WatchClient(
    const HttpServices& services, const httplib::Request& req,
    const std::shared_ptr<GenerateCall>& call) {
  if (services.disconnects == nullptr) return {};
  std::optional<int> fd = RequestSocket(req);
  if (!fd) return {};
  std::weak_ptr<GenerateCall> weak = call;
  return services.disconnects->Add(*fd, [weak] {
    if (auto strong = weak.lock()) strong->Abort();
  });
}

// One call of httplib's chunked content provider: waits (bounded) for
// output and writes it as SSE events. false ends the response (client gone).
bool PumpStream(StreamState& s, httplib::DataSink& sink) {
  SseWriter out([&sink](absl::string_view bytes) {
    return sink.write(bytes.data(), bytes.size());
  });
  if (!s.first_sent) {
    s.first_sent = true;
    if (s.formatter.HasFirstChunk())
      out.Add(s.formatter.FirstChunk(s.start->citations));
  }
  engine::GenerationDelta d;
  const bool got = s.call->AwaitOutput(kOutputWait, &d);
  // A client that left is normally seen by the watcher; without one (its
  // socket was not found), by the write or here.
  if (!got && !sink.is_writable()) {
    s.call->Abort();
    return false;
  }
  if (got) out.Add(s.formatter.DeltaChunk(d));
  if (got && d.finished) {
    s.call->MarkFinished();
    if (!d.error.ok()) {
      // OpenAI's SDKs raise an error event as an APIError.
      out.Add(ToHttpError(d.error).body);
    } else {
      out.Add(s.formatter.FlushChunk());
      out.Add(s.formatter.FinishChunk(d, s.start->retrieval_seconds));
      if (s.include_usage) out.Add(s.formatter.UsageChunk(d.usage));
      out.AddDone();
    }
    if (!out.Flush()) return false;
    sink.done();
    return true;
  }
  if (!out.Flush()) {
    s.call->Abort();
    return false;
  }
  return true;
}

}  // namespace

void HandleCompletion(const HttpServices& services, Endpoint endpoint,
                      const Caller& principal, const Json& body,
                      std::shared_ptr<void> in_flight,
                      const httplib::Request& req, httplib::Response& res) {
  absl::StatusOr<OpenAiRequest> translated =
      endpoint == Endpoint::kChatCompletions ? FromChatCompletion(body)
                                             : FromCompletion(body);
  if (!translated.ok()) {
    return SendStatus(res, translated.status(), FieldOf(translated.status()));
  }
  OpenAiRequest& r = *translated;
  const bool rag = r.request.rag().collections_size() > 0;
  auto call = GenerateCall::Create();
  call->Start(services.pipeline, r.request, principal);
  absl::StatusOr<const GenerateStart*> start = call->AwaitStart();
  if (!start.ok())
    return SendError(res, RefusalOf(services, r, start.status()));

  FormatOptions format;
  format.endpoint = endpoint;
  format.id = absl::StrCat(
      endpoint == Endpoint::kChatCompletions ? "chatcmpl-" : "cmpl-",
      (*start)->id);
  format.created = static_cast<int64_t>(std::time(nullptr));
  format.model = (*start)->model;
  if (auto model = services.models->Find((*start)->model); model.ok())
    format.tokenizer = (*model)->tokenizer.get();
  format.logprobs = r.logprobs && format.tokenizer != nullptr;
  format.top_logprobs = r.top_logprobs;
  format.include_usage = r.include_usage;
  format.rag = rag;
  format.tool_format = (*start)->tool_format;

  if (!r.stream) {
    DisconnectWatcher::Watch client = WatchClient(services, req, call);
    engine::GenerationDelta all;
    engine::GenerationDelta d;
    // The engine's last delta comes also after an abort (the client left).
    while (!all.finished) {
      if (call->AwaitOutput(kOutputWait, &d)) all.MergeFrom(std::move(d));
      d = engine::GenerationDelta();
    }
    call->MarkFinished();
    if (!all.error.ok()) return SendStatus(res, all.error);
    CompletionFormatter formatter(std::move(format));
    return SendJson(res, 200,
                    formatter.Complete(all, (*start)->citations,
                                       (*start)->retrieval_seconds));
  }

  auto state = std::make_shared<StreamState>(StreamState{
      call, *start, CompletionFormatter(std::move(format)), r.include_usage,
      false, std::move(in_flight), WatchClient(services, req, call)});
  res.set_header("Cache-Control", "no-cache");
  // Proxies (nginx) must pass events on as they come.
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [state](size_t, httplib::DataSink& sink) {
        return PumpStream(*state, sink);
      },
      // Also when the server stops mid-stream: nothing may keep generating
      // for a response that ended.
      [state](bool) { state->call->Abort(); });
}

}  // namespace lumen::server::http
