#include "server/service.h"

namespace ts::server {
namespace {

CallContext MakeCallContext(grpc::CallbackServerContext* context) {
  // gRPC reports "no deadline" as a time point centuries away, which converts
  // to a finite but unreachable absl::Time. The scheduler polls the probe
  // only before the call is answered, so the context is alive.
  return CallContext{
      .deadline = absl::FromChrono(context->deadline()),
      .is_cancelled = [context] { return context->IsCancelled(); }};
}

Answer FinishReactor(grpc::ServerUnaryReactor* reactor) {
  return [reactor](const grpc::Status& status) { reactor->Finish(status); };
}

}  // namespace

TransformerServiceImpl::TransformerServiceImpl(RequestHandler* handler)
    : handler_(handler) {}

grpc::ServerUnaryReactor* TransformerServiceImpl::Translate(
    grpc::CallbackServerContext* context,
    const transformer::v1::TranslateRequest* request,
    transformer::v1::TranslateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->Translate(*request, response, MakeCallContext(context),
                      FinishReactor(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* TransformerServiceImpl::Encode(
    grpc::CallbackServerContext* context,
    const transformer::v1::EncodeRequest* request,
    transformer::v1::EncodeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->Encode(*request, response, MakeCallContext(context),
                   FinishReactor(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* TransformerServiceImpl::GetModelInfo(
    grpc::CallbackServerContext* context,
    const transformer::v1::GetModelInfoRequest* /*request*/,
    transformer::v1::GetModelInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->GetModelInfo(response, FinishReactor(reactor));
  return reactor;
}

}  // namespace ts::server
