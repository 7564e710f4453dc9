// A Translate call in flight, for integration tests that need calls
// outstanding at once (cancel, drain, concurrency).
#ifndef TRANSFORMER_SERVING_TESTS_INTEGRATION_IN_FLIGHT_TRANSLATE_H_
#define TRANSFORMER_SERVING_TESTS_INTEGRATION_IN_FLIGHT_TRANSLATE_H_

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "transformer/v1/transformer_service.grpc.pb.h"

namespace ts::testing {

// Sends `request` at construction. Wait() blocks until the call ends and
// gives its status; the destructor cancels and waits, so a test that returns
// early (a failed ASSERT) never leaves the callback writing into freed
// memory.
class InFlightTranslate {
 public:
  // `deadline`: the call's gRPC deadline (none by default).
  InFlightTranslate(transformer::v1::TransformerService::Stub& stub,
                    transformer::v1::TranslateRequest request,
                    absl::Time deadline = absl::InfiniteFuture())
      : request_(std::move(request)) {
    if (deadline != absl::InfiniteFuture()) {
      context_.set_deadline(absl::ToChronoTime(deadline));
    }
    stub.async()->Translate(&context_, &request_, &response_,
                            [this](grpc::Status status) {
                              absl::MutexLock lock(&mu_);
                              status_ = std::move(status);
                              done_ = true;
                            });
  }
  ~InFlightTranslate() {
    context_.TryCancel();
    Wait();
  }

  void Cancel() { context_.TryCancel(); }
  grpc::Status Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return status_;
  }
  // Valid once Wait() returned.
  const transformer::v1::TranslateResponse& response() const {
    return response_;
  }

 private:
  transformer::v1::TranslateRequest request_;
  grpc::ClientContext context_;
  transformer::v1::TranslateResponse response_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ts::testing

#endif  // TRANSFORMER_SERVING_TESTS_INTEGRATION_IN_FLIGHT_TRANSLATE_H_
