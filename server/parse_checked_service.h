#pragma once
// Requests whose bytes do not parse get INVALID_ARGUMENT, not UNIMPLEMENTED.
//
// Why this exists: gRPC 1.51's callback handlers
// (grpcpp/impl/codegen/server_callback_handlers.h, RunHandler of
// CallbackUnaryHandler and CallbackServerStreamingHandler) never call the
// service when the request fails to deserialize (malformed protobuf, or a
// proto3 `string` field holding invalid UTF-8): they finish the call with
// UNIMPLEMENTED and an empty message, dropping the parse status. Clients read
// "the server has no such method".
//
// How: ParseCheckedService<Api> re-registers each method with a handler that
// holds gRPC's own typed handler. A request that parses goes to it
// unchanged; one that does not is answered by a second typed handler of the
// same kind whose reactor finishes with INVALID_ARGUMENT naming the method
// and message type. The simpler-looking choices do not work: a server
// interceptor sees the failed message but cannot finish the call with a
// status; SerializationTraits specializations would have to be visible in
// the generated .grpc.pb.cc too (an ODR trap) and the handler still replaces
// their status by UNIMPLEMENTED; raw (ByteBuffer) methods or a generic
// service would move parsing and response serialization into every method.

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/internal/raw_logging.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/server_callback_handlers.h"

namespace lumen::server {

// The status of a call whose request could not be parsed: INVALID_ARGUMENT
// "the request to /pkg.Service/Method could not be parsed as pkg.Type: ...".
grpc::Status UnparsableRequestStatus(
    const google::protobuf::MethodDescriptor& method);

// Called for each request refused because it did not parse, with the
// method it was sent to; must be safe to call from any gRPC thread.
using UnparsableObserver =
    std::function<void(const google::protobuf::MethodDescriptor& method)>;

namespace internal {

// The service named `full_name` in the generated pool; aborts when absent
// (the program was linked without its .proto).
const google::protobuf::ServiceDescriptor& FindService(
    std::string_view full_name);

// Holds gRPC's own typed handler (`serve`) and a second of the same type
// (`refuse`) whose reactor finishes with the parse error. A request that
// parses goes to `serve`; one that does not reaches `refuse` with the
// message holder Deserialize left behind (a nullptr request for a stream,
// as gRPC's own failure path hands it), which `refuse` then owns and frees.
template <class Handler>
class ParseCheckedHandler final : public grpc::internal::MethodHandler {
 public:
  ParseCheckedHandler(Handler serve, Handler refuse)
      : serve_(std::move(serve)), refuse_(std::move(refuse)) {}

  void* Deserialize(grpc_call* call, grpc_byte_buffer* req,
                    grpc::Status* status, void** handler_data) override {
    return serve_.Deserialize(call, req, status, handler_data);
  }

  void RunHandler(const HandlerParameter& param) override {
    if (param.status.ok()) {
      serve_.RunHandler(param);
      return;
    }
    refuse_.RunHandler(HandlerParameter(
        param.call, param.server_context, param.request, grpc::Status::OK,
        param.internal_data, param.call_requester));
  }

 private:
  Handler serve_;
  Handler refuse_;
};

// A stream's refusal: finishes at once; deletes itself when gRPC is done.
template <class Response>
class StreamRefusal final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit StreamRefusal(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace internal

// Base of Lumen's services instead of Api::CallbackService (Api is the
// generated class, e.g. lumen::v1::Inference). The derived constructor calls
// CheckParsing once per method, then CheckedEveryMethod(). Constructed on
// the main thread before the server starts.
template <class Api>
class ParseCheckedService : public Api::CallbackService {
 public:
  // Told of each request refused because it did not parse (metrics and the
  // request log), on the gRPC thread that refused it. Set on the main thread
  // before the server starts; never changed afterwards.
  void SetUnparsableObserver(UnparsableObserver observer) {
    unparsable_observer_ = std::move(observer);
  }

 protected:
  // Serves the unary method `name` with `fn` through a parse check.
  template <class Derived, class Request, class Response>
  void CheckParsing(
      std::string_view name,
      grpc::ServerUnaryReactor* (Derived::*fn)(grpc::CallbackServerContext*,
                                               const Request*, Response*)) {
    const auto& method = Method<Request, Response>(name, false);
    Derived* self = static_cast<Derived*>(this);
    using Handler = grpc::internal::CallbackUnaryHandler<Request, Response>;
    this->MarkMethodCallback(
        method.index(),
        new internal::ParseCheckedHandler<Handler>(
            Handler([self, fn](grpc::CallbackServerContext* ctx,
                               const Request* req, Response* resp) {
              return (self->*fn)(ctx, req, resp);
            }),
            Handler([this, descriptor = &method,
                     refusal = UnparsableRequestStatus(method)](
                        grpc::CallbackServerContext* ctx, const Request*,
                        Response*) {
              NoteUnparsable(*descriptor);
              grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
              r->Finish(refusal);
              return r;
            })));
  }

  // Serves the server-streaming method `name` with `fn` through a parse
  // check.
  template <class Derived, class Request, class Response>
  void CheckParsing(std::string_view name,
                    grpc::ServerWriteReactor<Response>* (Derived::*fn)(
                        grpc::CallbackServerContext*, const Request*)) {
    const auto& method = Method<Request, Response>(name, true);
    Derived* self = static_cast<Derived*>(this);
    using Handler =
        grpc::internal::CallbackServerStreamingHandler<Request, Response>;
    this->MarkMethodCallback(
        method.index(),
        new internal::ParseCheckedHandler<Handler>(
            Handler([self, fn](grpc::CallbackServerContext* ctx,
                               const Request* req) {
              return (self->*fn)(ctx, req);
            }),
            Handler([this, descriptor = &method,
                     refusal = UnparsableRequestStatus(method)](
                        grpc::CallbackServerContext*, const Request*) {
              NoteUnparsable(*descriptor);
              return new internal::StreamRefusal<Response>(refusal);
            })));
  }

  // Aborts unless every method of the service went through
  // CheckParsing (a method added to the .proto must be added here too).
  void CheckedEveryMethod() const {
    const auto& service = internal::FindService(Api::service_full_name());
    for (int i = 0; i < service.method_count(); ++i) {
      if (i >= static_cast<int>(checked_.size()) || !checked_[i]) {
        ABSL_RAW_LOG(FATAL, "%s is served without a parse check",
                     service.method(i)->full_name().c_str());
      }
    }
  }

 private:
  // The method's descriptor, aborting unless the generated code's index for it
  // (its position in the .proto) serves the same types.
  template <class Request, class Response>
  const google::protobuf::MethodDescriptor& Method(std::string_view name,
                                                   bool server_streaming) {
    const google::protobuf::MethodDescriptor* found =
        internal::FindService(Api::service_full_name())
            .FindMethodByName(std::string(name));
    if (found == nullptr) {
      ABSL_RAW_LOG(FATAL, "%s has no method %s", Api::service_full_name(),
                   std::string(name).c_str());
    }
    const google::protobuf::MethodDescriptor& m = *found;
    if (m.input_type() != Request::descriptor() ||
        m.output_type() != Response::descriptor() ||
        m.server_streaming() != server_streaming || m.client_streaming()) {
      ABSL_RAW_LOG(FATAL, "%s: the handler's types differ from the .proto",
                   m.full_name().c_str());
    }
    if (static_cast<int>(checked_.size()) <= m.index())
      checked_.resize(m.index() + 1);
    checked_[m.index()] = true;
    return m;
  }

  void NoteUnparsable(const google::protobuf::MethodDescriptor& method) const {
    if (unparsable_observer_) unparsable_observer_(method);
  }

  std::vector<bool> checked_;
  UnparsableObserver unparsable_observer_;
};

}  // namespace lumen::server
