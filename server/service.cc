#include "server/service.h"

#include <deque>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"

namespace ts::server {
namespace {

using transformer::v1::TranslateStreamResponse;

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

// One TranslateStream call. The handler calls Write (in order, never after
// its answer) and then FinishWhenWritten once; gRPC allows one write in
// flight, so the rest wait in a queue. The reactor deletes itself in OnDone,
// which gRPC runs after Finish, so no handler callback can reach it then.
class TranslateStreamReactor
    : public grpc::ServerWriteReactor<TranslateStreamResponse> {
 public:
  TranslateStreamReactor(RequestHandler* handler,
                         grpc::CallbackServerContext* context,
                         const transformer::v1::TranslateRequest& request) {
    handler->TranslateStream(
        request, MakeCallContext(context),
        [this](TranslateStreamResponse message) { Write(std::move(message)); },
        [this](const grpc::Status& status) { FinishWhenWritten(status); });
  }

  void OnWriteDone(bool ok) override {
    bool write = false;
    bool finish = false;
    grpc::Status status;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) {  // the client is gone: nothing more can be delivered
        broken_ = true;
        queue_.clear();
      }
      if (!queue_.empty()) {
        TakeNextLocked();
        write = true;
      } else if (finish_requested_) {
        finish = true;
        status = status_;
      }
    }
    // gRPC calls are made without the lock: a reaction may run inline. After
    // Finish, OnDone may delete this at any moment.
    if (write) StartWrite(&in_flight_);
    if (finish) Finish(status);
  }

  void OnDone() override { delete this; }

 private:
  void Write(TranslateStreamResponse message) {
    bool write = false;
    {
      std::lock_guard lock(mu_);
      if (broken_) return;
      // A queued message of the same text that is not its last one takes the
      // new ids and text: fewer, larger writes for a slow reader.
      if (!queue_.empty() &&
          queue_.back().text_index() == message.text_index() &&
          !queue_.back().has_translation()) {
        TranslateStreamResponse& last = queue_.back();
        last.mutable_token_ids()->MergeFrom(message.token_ids());
        last.mutable_text_delta()->append(message.text_delta());
        if (message.has_translation()) {
          last.mutable_translation()->Swap(message.mutable_translation());
        }
        return;
      }
      queue_.push_back(std::move(message));
      if (!writing_) {
        TakeNextLocked();
        write = true;
      }
    }
    if (write) StartWrite(&in_flight_);
  }

  void FinishWhenWritten(const grpc::Status& status) {
    {
      std::lock_guard lock(mu_);
      status_ = status;
      finish_requested_ = true;
      if (writing_) return;  // OnWriteDone finishes once the queue is empty
    }
    Finish(status);
  }

  // Moves the next queued message into in_flight_, which only the write
  // the caller starts next reads, until OnWriteDone.
  void TakeNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
  }

  std::mutex mu_;
  std::deque<TranslateStreamResponse> queue_ ABSL_GUARDED_BY(mu_);
  // The message being written: set by TakeNextLocked, read by gRPC.
  TranslateStreamResponse in_flight_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);  // set with finish_requested_
};

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

grpc::ServerWriteReactor<TranslateStreamResponse>*
TransformerServiceImpl::TranslateStream(
    grpc::CallbackServerContext* context,
    const transformer::v1::TranslateRequest* request) {
  return new TranslateStreamReactor(handler_, context, *request);
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
    const transformer::v1::GetModelInfoRequest* request,
    transformer::v1::GetModelInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->GetModelInfo(*request, response, MakeCallContext(context),
                         FinishReactor(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* TransformerServiceImpl::ListModels(
    grpc::CallbackServerContext* context,
    const transformer::v1::ListModelsRequest* /*request*/,
    transformer::v1::ListModelsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->ListModels(response, FinishReactor(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* TransformerServiceImpl::LoadModel(
    grpc::CallbackServerContext* context,
    const transformer::v1::LoadModelRequest* request,
    transformer::v1::LoadModelResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->LoadModel(*request, response, MakeCallContext(context),
                      FinishReactor(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* TransformerServiceImpl::UnloadModel(
    grpc::CallbackServerContext* context,
    const transformer::v1::UnloadModelRequest* request,
    transformer::v1::UnloadModelResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->UnloadModel(*request, response, FinishReactor(reactor));
  return reactor;
}

}  // namespace ts::server
