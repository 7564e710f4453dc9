// How the gRPC port listens: plaintext or (mutual) TLS, and how long a client
// connection may live.
#ifndef TRANSFORMER_SERVING_SERVER_TRANSPORT_H_
#define TRANSFORMER_SERVING_SERVER_TRANSPORT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/server_options.h"

namespace ts::server {

// Insecure credentials without --tls_cert; else TLS with the PEM files of
// --tls_cert/--tls_key and, with --tls_client_ca, client certificates
// required and verified against it. Errors: NotFound naming the flag and
// the path of a file that cannot be read (or is empty).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options);

// With --max_connection_age_s > 0, sets the channel arguments that make the
// server send GOAWAY to each connection after that age (gRPC adds +-10%
// jitter) and close it after the grace period.
void ApplyConnectionAge(const ServerOptions& options,
                        grpc::ServerBuilder* builder);

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_TRANSPORT_H_
