#include "client/connection.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace ts::client {
namespace {

absl::StatusOr<std::string> ReadPem(absl::string_view flag,
                                    const std::string& path) {
  // stdio, not ifstream: libstdc++ throws reading a directory.
  std::FILE* file = std::fopen(path.c_str(), "rb");
  std::string contents;
  bool read_error = file == nullptr;
  if (file != nullptr) {
    char buffer[4096];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
      contents.append(buffer, n);
    }
    read_error = std::ferror(file) != 0;
    std::fclose(file);
  }
  // A missing, unreadable or empty file, or a directory: an error now,
  // naming the file, rather than a failed TLS handshake later.
  if (read_error || contents.empty()) {
    return absl::NotFoundError(
        absl::StrCat("--", flag, ": cannot read PEM file \"", path, "\""));
  }
  return contents;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const ConnectionOptions& options) {
  if (!options.use_tls()) return grpc::InsecureChannelCredentials();
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key must be given together");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("tls_ca", options.tls_ca);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!options.tls_cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPem("tls_cert", options.tls_cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem("tls_key", options.tls_key);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

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
  if (!options.tls_server_name.empty()) {
    arguments.SetSslTargetNameOverride(options.tls_server_name);
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();
  return grpc::CreateCustomChannel(options.target, *credentials, arguments);
}

std::unique_ptr<grpc::ClientContext> MakeContext(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
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
