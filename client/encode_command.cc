#include "client/encode_command.h"

#include <algorithm>
#include <vector>

#include "client/connection.h"
#include "client/exit_codes.h"
#include "nlohmann/json.hpp"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::client {

int RunEncode(const EncodeCommandOptions& options,
              const std::shared_ptr<grpc::Channel>& channel,
              const std::vector<std::string>& texts, std::ostream& out,
              std::ostream& err, Progress* progress) {
  transformer::v1::Pooling pooling;
  if (options.pooling == "mean") {
    pooling = transformer::v1::POOLING_MEAN;
  } else if (options.pooling == "first") {
    pooling = transformer::v1::POOLING_FIRST;
  } else if (options.pooling == "tokens") {
    pooling = transformer::v1::POOLING_TOKENS;
  } else {
    err << "transformer-client: --pooling must be mean, first or tokens, got \""
        << options.pooling << "\"" << std::endl;
    return kExitUsageError;
  }
  auto stub = transformer::v1::TransformerService::NewStub(channel);
  const size_t per_request =
      static_cast<size_t>(std::max(1, options.texts_per_request));
  for (size_t first = 0; first < texts.size(); first += per_request) {
    const size_t last = std::min(texts.size(), first + per_request);
    transformer::v1::EncodeRequest request;
    for (size_t i = first; i < last; ++i) request.add_texts(texts[i]);
    request.set_pooling(pooling);
    request.set_normalize(options.normalize);
    SetModelFields(options.model, &request);
    transformer::v1::EncodeResponse response;
    auto context = MakeContext(options.timeout, options.model.RoutingKey());
    const grpc::Status status = stub->Encode(context.get(), request, &response);
    if (!status.ok()) {
      err << "transformer-client: " << DescribeRpcError("Encode", status)
          << " (texts " << first + 1 << ".." << last << " of " << texts.size()
          << ")" << std::endl;
      return kExitRpcError;
    }
    if (response.embeddings_size() != static_cast<int>(last - first)) {
      err << "transformer-client: Encode returned "
          << response.embeddings_size() << " embeddings for " << last - first
          << " texts" << std::endl;
      return kExitRpcError;
    }
    for (size_t i = first; i < last; ++i) {
      const transformer::v1::Embedding& embedding =
          response.embeddings(static_cast<int>(i - first));
      const nlohmann::json line = {
          {"text", texts[i]},
          {"dim", embedding.dim()},
          {"num_tokens", embedding.num_tokens()},
          {"values", std::vector<float>(embedding.values().begin(),
                                        embedding.values().end())}};
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
          << '\n';
    }
    out.flush();
    if (!out) {
      err << "transformer-client: cannot write the output" << std::endl;
      return kExitIoError;
    }
    progress->Advance(last - first);
  }
  return kExitOk;
}

}  // namespace ts::client
