// `transformer-client encode`: texts in, one JSON line of encoder vectors out
// per text.
#ifndef TRANSFORMER_SERVING_CLIENT_ENCODE_COMMAND_H_
#define TRANSFORMER_SERVING_CLIENT_ENCODE_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/connection.h"
#include "client/progress.h"
#include "grpcpp/grpcpp.h"

namespace ts::client {

struct EncodeCommandOptions {
  // The model of every request (and its x-model metadata); empty = the
  // server's default.
  ModelSelection model;
  std::string pooling = "mean";  // mean | first | tokens
  bool normalize = false;        // L2-normalize each vector
  int texts_per_request = 32;
  absl::Duration timeout = absl::Minutes(5);  // per request
};

// Encodes `texts` in requests of at most texts_per_request texts, one after
// the other, writing {text, dim, num_tokens, values} per text to `out` in
// input order, over `channel`; `progress` counts the texts written. Returns
// an ExitCode (client/exit_codes.h) after writing the first error to `err`:
// usage error for a bad --pooling, RPC error, I/O error if `out` fails.
int RunEncode(const EncodeCommandOptions& options,
              const std::shared_ptr<grpc::Channel>& channel,
              const std::vector<std::string>& texts, std::ostream& out,
              std::ostream& err, Progress* progress);

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_ENCODE_COMMAND_H_
