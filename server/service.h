// The gRPC front end: validates each call, hands its sentences to the
// scheduler and answers when the workers are done. No handler blocks on
// model compute.
#ifndef TRANSFORMER_SERVING_SERVER_SERVICE_H_
#define TRANSFORMER_SERVING_SERVER_SERVICE_H_

#include <memory>

#include "core/model/marian_model.h"
#include "grpcpp/grpcpp.h"
#include "server/metrics.h"
#include "server/request_validation.h"
#include "server/scheduler.h"
#include "server/server_options.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::server {

// Maps an absl status (the scheduler's) to the gRPC status with the same code
// and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

class TransformerServiceImpl final
    : public transformer::v1::TransformerService::CallbackService {
 public:
  // `scheduler` and `metrics` must outlive the service.
  TransformerServiceImpl(std::shared_ptr<const core::MarianModel> model,
                         const ServerOptions& options, Scheduler* scheduler,
                         Metrics* metrics);

  grpc::ServerUnaryReactor* Translate(
      grpc::CallbackServerContext* context,
      const transformer::v1::TranslateRequest* request,
      transformer::v1::TranslateResponse* response) override;
  grpc::ServerUnaryReactor* Encode(
      grpc::CallbackServerContext* context,
      const transformer::v1::EncodeRequest* request,
      transformer::v1::EncodeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(
      grpc::CallbackServerContext* context,
      const transformer::v1::GetModelInfoRequest* request,
      transformer::v1::GetModelInfoResponse* response) override;

  const RequestValidator& validator() const { return validator_; }

 private:
  std::shared_ptr<const core::MarianModel> model_;
  RequestValidator validator_;
  Scheduler* const scheduler_;
  Metrics* const metrics_;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_SERVICE_H_
