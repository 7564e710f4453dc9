// The HTTP/JSON front end: the API of transformer_service.proto in the
// proto3 JSON mapping (as grpc-gateway serves it), health endpoints for
// probes, and the attention page at "/". Requests go through the same
// RequestHandler as gRPC calls: same validation, scheduler, limits, metrics
// and drain.
//
//   POST /v1/translate   TranslateRequest  -> TranslateResponse
//   POST /v1/translate:stream
//                        TranslateRequest  -> server-sent events
//                        (text/event-stream): one "data: <JSON
//                        TranslateStreamResponse>" event per message of
//                        TranslateStream; an error after the first message
//                        ends the stream with "event: error" and data
//                        {"code", "message"}
//   POST /v1/encode      EncodeRequest     -> EncodeResponse
//   GET  /v1/model                         -> GetModelInfoResponse
//   GET  /healthz        200 while the process runs (liveness)
//   GET  /readyz         200 once the model is loaded and warmed up; 503
//                        while loading and from SIGTERM on (readiness)
//   GET  /               the page that translates and draws attention
//
// Errors are {"code": <gRPC code number>, "message": "..."} with the HTTP
// status grpc-gateway maps the code to (HttpStatusFromCode); a body that is
// not the request message in JSON is INVALID_ARGUMENT (400), a body over
// --max_message_bytes is 413. A "Grpc-Timeout" header (gRPC's format:
// "500m", "10S") sets the call's deadline.
#ifndef TRANSFORMER_SERVING_SERVER_HTTP_GATEWAY_H_
#define TRANSFORMER_SERVING_SERVER_HTTP_GATEWAY_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "server/request_handler.h"
#include "server/server_options.h"

namespace httplib {
class Server;
}

namespace ts::server {

// The HTTP status grpc-gateway (runtime.HTTPStatusFromCode) answers a gRPC
// code with: OK 200, CANCELLED 499, INVALID_ARGUMENT 400, NOT_FOUND 404,
// RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, ...
int HttpStatusFromCode(grpc::StatusCode code);

// Parses a Grpc-Timeout header value: 1 to 8 digits and a unit (H hours,
// M minutes, S seconds, m milliseconds, u microseconds, n nanoseconds).
// Errors: InvalidArgument naming the value.
absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value);

// Thread-safe. Serves on its own threads from Start() to Stop().
class HttpGateway {
 public:
  explicit HttpGateway(const ServerOptions& options);
  ~HttpGateway();

  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  // Binds options.http_address:options.http_port (plaintext, or TLS with the
  // gRPC port's --tls_cert/--tls_key/--tls_client_ca) and serves on
  // background threads. Until SetHandler, the API answers UNAVAILABLE and
  // /readyz 503. Errors: InvalidArgument if the TLS files do not load,
  // Unavailable if the port cannot be bound.
  absl::Status Start();
  // From now on the API calls go to `handler`, which must outlive Stop().
  void SetHandler(RequestHandler* handler);
  // What /readyz answers: 200 when true, 503 when false.
  void SetReady(bool ready);
  // Stops listening and waits for the connections' handlers to return
  // (each in-flight call is answered by the scheduler first).
  void Stop();

  // "host:port" the gateway listens on.
  std::string address() const;

 private:
  void Route();

  const ServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  std::atomic<RequestHandler*> handler_{nullptr};
  std::atomic<bool> ready_{false};
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_HTTP_GATEWAY_H_
