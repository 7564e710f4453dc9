#include "server/transport.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/pem_file.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/server_credentials.h"

namespace ts::server {
namespace {

int ClampToIntMs(absl::Duration duration) {
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(duration), INT32_MAX));
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options) {
  if (!options.tls_enabled()) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert =
      common::ReadPemFile("tls_cert", options.tls_cert);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key =
      common::ReadPemFile("tls_key", options.tls_key);
  if (!key.ok()) return key.status();

  const bool mutual = !options.tls_client_ca.empty();
  grpc::SslServerCredentialsOptions ssl(
      mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
             : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (mutual) {
    absl::StatusOr<std::string> ca =
        common::ReadPemFile("tls_client_ca", options.tls_client_ca);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  return grpc::SslServerCredentials(ssl);
}

void ApplyConnectionAge(const ServerOptions& options,
                        grpc::ServerBuilder* builder) {
  if (options.max_connection_age <= absl::ZeroDuration()) return;
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                              ClampToIntMs(options.max_connection_age));
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                              ClampToIntMs(options.max_connection_age_grace));
}

}  // namespace ts::server
