// The gRPC front end: converts each call's deadline and cancellation and
// hands the call to the shared RequestHandler, which validates it, queues its
// sentences and answers when the workers are done. No handler blocks on
// model compute.
#ifndef TRANSFORMER_SERVING_SERVER_SERVICE_H_
#define TRANSFORMER_SERVING_SERVER_SERVICE_H_

#include "grpcpp/grpcpp.h"
#include "server/request_handler.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::server {

class TransformerServiceImpl final
    : public transformer::v1::TransformerService::CallbackService {
 public:
  // `handler` must outlive the service.
  explicit TransformerServiceImpl(RequestHandler* handler);

  grpc::ServerUnaryReactor* Translate(
      grpc::CallbackServerContext* context,
      const transformer::v1::TranslateRequest* request,
      transformer::v1::TranslateResponse* response) override;
  // Keeps one write in flight and queues the rest (merging the queued
  // messages of a text), then finishes with the handler's status once the
  // queue is empty. A client that goes away stops the writes.
  grpc::ServerWriteReactor<transformer::v1::TranslateStreamResponse>*
  TranslateStream(grpc::CallbackServerContext* context,
                  const transformer::v1::TranslateRequest* request) override;
  grpc::ServerUnaryReactor* Encode(
      grpc::CallbackServerContext* context,
      const transformer::v1::EncodeRequest* request,
      transformer::v1::EncodeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(
      grpc::CallbackServerContext* context,
      const transformer::v1::GetModelInfoRequest* request,
      transformer::v1::GetModelInfoResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(
      grpc::CallbackServerContext* context,
      const transformer::v1::ListModelsRequest* request,
      transformer::v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* LoadModel(
      grpc::CallbackServerContext* context,
      const transformer::v1::LoadModelRequest* request,
      transformer::v1::LoadModelResponse* response) override;
  grpc::ServerUnaryReactor* UnloadModel(
      grpc::CallbackServerContext* context,
      const transformer::v1::UnloadModelRequest* request,
      transformer::v1::UnloadModelResponse* response) override;

 private:
  RequestHandler* const handler_;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_SERVICE_H_
