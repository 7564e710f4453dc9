#include "client/connection.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/pem_file.h"
#include "nlohmann/json.hpp"

namespace ts::client {
namespace {

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const ConnectionOptions& options) {
  if (!options.use_tls()) return grpc::InsecureChannelCredentials();
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key must be given together");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca.empty()) {
    absl::StatusOr<std::string> ca =
        common::ReadPemFile("tls_ca", options.tls_ca);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!options.tls_cert.empty()) {
    absl::StatusOr<std::string> cert =
        common::ReadPemFile("tls_cert", options.tls_cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key =
        common::ReadPemFile("tls_key", options.tls_key);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

// "0.2s": the proto3 JSON form of google.protobuf.Duration.
std::string DurationJson(absl::Duration duration) {
  return absl::StrCat(absl::ToDoubleSeconds(duration), "s");
}

}  // namespace

std::string RetryServiceConfig(const ConnectionOptions& options) {
  nlohmann::json method = {
      {"name", {{{"service", "transformer.v1.TransformerService"}}}}};
  if (options.max_attempts > 1) {
    method["retryPolicy"] = {
        {"maxAttempts", options.max_attempts},
        {"initialBackoff", DurationJson(options.initial_backoff)},
        {"maxBackoff", DurationJson(options.max_backoff)},
        {"backoffMultiplier", 2},
        {"retryableStatusCodes", {"UNAVAILABLE"}}};
  }
  return nlohmann::json({{"methodConfig", {method}}}).dump();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(
    const ConnectionOptions& options) {
  grpc::ChannelArguments arguments;
  // Embeddings of POOLING_TOKENS can exceed the 4 MiB default.
  arguments.SetMaxReceiveMessageSize(-1);
  if (!options.lb_policy.empty()) {
    if (options.lb_policy != "pick_first" &&
        options.lb_policy != "round_robin") {
      return absl::InvalidArgumentError(
          absl::StrCat("--lb_policy must be pick_first or round_robin, got \"",
                       options.lb_policy, "\""));
    }
    arguments.SetLoadBalancingPolicyName(options.lb_policy);
  }
  if (options.max_attempts < 1 || options.max_attempts > 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_attempts must be in [1, 5] (gRPC's limit), got ",
                     options.max_attempts));
  }
  arguments.SetServiceConfigJSON(RetryServiceConfig(options));
  // Retries resend the request from a per-call buffer; large requests (many
  // texts) must fit in it to be retried (the default is 256 KiB).
  arguments.SetInt(GRPC_ARG_PER_RPC_RETRY_BUFFER_SIZE, 64 << 20);
  if (!options.tls_server_name.empty()) {
    arguments.SetSslTargetNameOverride(options.tls_server_name);
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();
  return grpc::CreateCustomChannel(options.target, *credentials, arguments);
}

std::string ModelSelection::RoutingKey() const {
  if (!model.empty()) return model;
  if (!source_language.empty() && !target_language.empty()) {
    return absl::StrCat(source_language, "-", target_language);
  }
  return "";
}

absl::Status ValidateModelSelection(const ModelSelection& selection) {
  if (selection.source_language.empty() != selection.target_language.empty()) {
    return absl::InvalidArgumentError(
        "--source_language and --target_language go together (both or "
        "neither)");
  }
  return absl::OkStatus();
}

std::unique_ptr<grpc::ClientContext> MakeContext(
    absl::Duration timeout, const std::string& routing_key) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  if (!routing_key.empty()) {
    context->AddMetadata(kModelMetadataKey, routing_key);
  }
  return context;
}

std::string DescribeRpcError(const std::string& method,
                             const grpc::Status& status) {
  // gRPC and absl share the numbering and the names of the codes.
  return absl::StrCat(method, " failed: ",
                      absl::StatusCodeToString(
                          static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}

}  // namespace ts::client
