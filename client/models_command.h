// `transformer-client models`: the server's model repository (ListModels),
// and loading or unloading one of its models (LoadModel, UnloadModel).
#ifndef TRANSFORMER_SERVING_CLIENT_MODELS_COMMAND_H_
#define TRANSFORMER_SERVING_CLIENT_MODELS_COMMAND_H_

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::client {

struct ModelsCommandOptions {
  // The response as one JSON line (proto3 JSON, proto field names) instead
  // of a table.
  bool json = false;
  absl::Duration timeout = absl::Minutes(5);  // per call
};

// The models of `response` as a table, one row per model: name (a "*" marks
// the default model), languages ("en-de"; a multi-target model
// "en-de,fr"), state, weight MiB, requests in flight, last use (how long
// before `now`, or "never"); then the reason of each FAILED model, and the
// resident weight MiB against the memory budget.
std::string ModelsTable(const transformer::v1::ListModelsResponse& response,
                        absl::Time now);

// `arguments` (the words after "models"): none lists the models (ListModels)
// as ModelsTable or JSON; "load NAME" / "unload NAME" call LoadModel /
// UnloadModel with x-model metadata NAME and print the model's status (a
// one-row table, or JSON). Returns an ExitCode (client/exit_codes.h): usage
// error for other arguments, RPC error after writing the failed call to
// `err`, I/O error if `out` fails.
int RunModels(const ModelsCommandOptions& options,
              const std::shared_ptr<grpc::Channel>& channel,
              const std::vector<std::string>& arguments, std::ostream& out,
              std::ostream& err);

}  // namespace ts::client

#endif  // TRANSFORMER_SERVING_CLIENT_MODELS_COMMAND_H_
