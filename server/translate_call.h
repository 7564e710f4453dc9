// One Translate or TranslateStreamOutput call while its sentences are looked up
// or computed: it collects each sentence's outcome, streams a text's sentences
// in order, and answers the call exactly once.
#ifndef TRANSFORMER_SERVING_SERVER_TRANSLATE_CALL_H_
#define TRANSFORMER_SERVING_SERVER_TRANSLATE_CALL_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/decoding/options.h"
#include "core/text/tokenizer.h"
#include "grpcpp/support/status.h"
#include "server/loaded_model.h"
#include "server/metrics.h"
#include "server/request_validation.h"
#include "server/shared_translation.h"
#include "server/translate_stream.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {

// What a front end knows about one call besides its message.
struct CallContext {
  // The call fails with DEADLINE_EXCEEDED once this passes (it detaches
  // from the sentences it shares with other calls).
  absl::Time deadline = absl::InfiniteFuture();
  // Polled while the call waits for its sentences (queued, and between
  // decoder steps, once per sentence, under the scheduler's lock): keep it
  // cheap (gRPC: an atomic load; HTTP: one poll(2) of the connection's
  // socket). May be empty (the transport cannot tell). Never called after
  // the call is answered.
  std::function<bool()> is_cancelled;
};

// Called exactly once per call with the call's status; on OK the response
// passed in has been filled.
using Answer = std::function<void(const grpc::Status& status)>;

// Maps an absl status (the scheduler's) to the gRPC status with the same code
// and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Thread-safe. Each sentence (segment) of each text is one waiter of a
// SharedTranslation, which may serve other calls too. The call is answered
// when its last sentence has its result, or at its first error (its own
// cancel or deadline included); its other sentences then detach from their
// computations at their next poll.
class TranslateCall {
 public:
  // `texts`: the request's texts (the gaps come from them); `work`: their
  // segments and the resolved options. Exactly one of `response` (unary:
  // filled before `finish` runs with OK; must outlive it) and `stream` is
  // set. `model`: the lease of the model the call runs on (held until the
  // call ends; its tokenizer rebuilds the texts); `models`: the names that
  // Translation.models reports. `metrics` (assembly time) must outlive the
  // call.
  TranslateCall(std::vector<std::string> texts, TranslateWork work,
                CallContext context,
                transformer::v1::TranslateResponse* response,
                std::shared_ptr<TranslateStreamOutput> stream, Answer finish,
                std::shared_ptr<const ModelLease> model,
                std::vector<std::string> models, Metrics* metrics);

  TranslateCall(const TranslateCall&) = delete;
  TranslateCall& operator=(const TranslateCall&) = delete;

  const TranslateWork& work() const { return work_; }

  // The waiter of segment `segment` of text `text`; `call` is this call (the
  // waiter keeps it alive). Streams tokens only for a single-sentence text
  // when `search_streams` (greedy search or one sample).
  static SharedTranslation::Waiter WaiterFor(
      const std::shared_ptr<TranslateCall>& call, int text, int segment,
      bool search_streams);

  // Segment `segment` of text `text` has its outcome (a cache hit, or a
  // computation's end).
  void Settle(int text, int segment, const absl::Status& status,
              const core::TranslationResult& result);

  // The set-up (lookups and queueing) is over: from now on the last
  // sentence's outcome answers the call. Called once.
  void SetUpDone();

  // OK while the call still wants its sentences; else why not (it was
  // answered, cancelled or is past its deadline).
  absl::Status Poll();

 private:
  struct Text {
    std::vector<core::TranslationResult> results;  // by segment
    std::vector<bool> done;                        // by segment
    int emitted = 0;  // stream: segments sent, in order
  };

  // Stream: sends the segments of text `t` that are done with every segment
  // before them; the last one with the Translation.
  void EmitLocked(int t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // AssembleTranslation of text `t`, timed.
  void Assemble(int t, transformer::v1::Translation* translation);
  // Answers OK: fills the response (unary). Called once, without mu_.
  void Respond();

  const std::vector<std::string> texts_;
  const TranslateWork work_;
  transformer::v1::TranslateResponse* const response_;
  const std::shared_ptr<TranslateStreamOutput> stream_;
  const Answer finish_;
  const std::shared_ptr<const ModelLease> model_;
  const std::vector<std::string> models_;
  const core::MarianTokenizer& tokenizer_;
  Metrics* const metrics_;

  std::mutex mu_;
  CallContext context_ ABSL_GUARDED_BY(mu_);
  std::vector<Text> state_ ABSL_GUARDED_BY(mu_);
  // Segments without an outcome, + 1 until SetUpDone.
  int pending_ ABSL_GUARDED_BY(mu_) = 1;
  bool answered_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_TRANSLATE_CALL_H_
