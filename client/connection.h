// Channel to a transformer-server and how RPC errors are reported.
#ifndef TRANSFORMER_SERVING_CLIENT_CONNECTION_H_
#define TRANSFORMER_SERVING_CLIENT_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace ts::client {

struct ConnectionOptions {
  // Any gRPC target string: "host:port", "dns:///host:port",
  // "ipv4:a:p,b:p", "unix:/path".
  std::string target;
  // TLS is used if `tls` or any of the files / the name below is set.
  bool tls = false;
  std::string tls_ca;           // PEM roots; empty: the system's roots
  std::string tls_cert;         // PEM client certificate (mutual TLS)
  std::string tls_key;          // its private key
  std::string tls_server_name;  // name checked against the server's cert
  // "pick_first" (gRPC's default) or "round_robin" (spread calls over every
  // address the target resolves to); empty: the default.
  std::string lb_policy;
  // Attempts per call (1 = no retry) when the server answers UNAVAILABLE
  // (queue full, draining, not reachable): gRPC's retry policy, with
  // exponential backoff and jitter. gRPC caps it at 5.
  int max_attempts = 5;
  // Backoff of the first retry; each next one up to 2x longer (at most
  // max_backoff). gRPC waits a random time in [0, backoff] (jitter).
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);

  bool use_tls() const {
    return tls || !tls_ca.empty() || !tls_cert.empty() || !tls_key.empty() ||
           !tls_server_name.empty();
  }
};

// A channel to `options.target`; responses of any size are accepted. Calls
// of transformer.v1.TransformerService retry UNAVAILABLE as
// RetryServiceConfig says. Errors: InvalidArgument for a bad lb_policy,
// max_attempts outside [1, 5], or a tls_cert without tls_key (or the
// reverse); NotFound naming a PEM file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(
    const ConnectionOptions& options);

// The channel's service config (gRFC A6 retry policy) as JSON: every method
// of transformer.v1.TransformerService retries UNAVAILABLE up to
// max_attempts attempts in all, with exponential backoff (initial_backoff,
// x2, max_backoff) and jitter. No retry policy when max_attempts is 1.
std::string RetryServiceConfig(const ConnectionOptions& options);

// Which model of the server a request asks for (TranslateRequest and
// EncodeRequest .model, .source_language, .target_language): a model by
// name, or a source and target language (ISO 639-1 or 639-3 codes, both or
// neither); all empty = the server's default model.
struct ModelSelection {
  std::string model;
  std::string source_language;
  std::string target_language;

  // The value of the kModelMetadataKey header: `model`, else
  // "SOURCE-TARGET" (e.g. "en-fr"), else "" (no header).
  std::string RoutingKey() const;
};

// Sets `request`'s model, source_language and target_language (a
// TranslateRequest or an EncodeRequest) from `selection`.
template <typename Request>
void SetModelFields(const ModelSelection& selection, Request* request) {
  request->set_model(selection.model);
  request->set_source_language(selection.source_language);
  request->set_target_language(selection.target_language);
}

// gRPC metadata the client sends with every call for a model (the
// RoutingKey), so that a proxy can hash on it and keep each model on the
// same pods (Envoy RING_HASH with a hash_policy on this header).
inline constexpr char kModelMetadataKey[] = "x-model";

// InvalidArgument naming the flags unless source_language and
// target_language are both set or both empty.
absl::Status ValidateModelSelection(const ModelSelection& selection);

// A context for one call that gives up after `timeout`; with a non-empty
// `routing_key`, the call carries it as kModelMetadataKey metadata.
std::unique_ptr<grpc::ClientContext> MakeContext(
    absl::Duration timeout, const std::string& routing_key = "");

// "<method> failed: <CODE_NAME>: <message>", e.g.
// "Translate failed: INVALID_ARGUMENT: texts[0] is empty".
std::string DescribeRpcError(const std::string& method,
                             const grpc::Status& status);

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_CONNECTION_H_
