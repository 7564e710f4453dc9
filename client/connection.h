// Channel to a transformer-server and how RPC errors are reported.
#ifndef TRANSFORMER_SERVING_CLIENT_CONNECTION_H_
#define TRANSFORMER_SERVING_CLIENT_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace ts::client {

// An insecure channel to `target`, any gRPC target string ("host:port",
// "dns:///host:port", "unix:/path"). Responses of any size are accepted.
std::shared_ptr<grpc::Channel> Connect(const std::string& target);

// A context for one call that gives up after `timeout`.
std::unique_ptr<grpc::ClientContext> MakeContext(absl::Duration timeout);

// "<method> failed: <CODE_NAME>: <message>", e.g.
// "Translate failed: INVALID_ARGUMENT: texts[0] is empty".
std::string DescribeRpcError(const std::string& method,
                             const grpc::Status& status);

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_CONNECTION_H_
