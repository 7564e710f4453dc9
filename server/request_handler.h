// The request path that every front end (gRPC, HTTP/JSON) shares: validate a
// request, hand its sentences to the scheduler, build the response from the
// workers' results, record the metrics, answer exactly once. Front ends only
// convert their wire format and their call's deadline and cancellation.
#ifndef TRANSFORMER_SERVING_SERVER_REQUEST_HANDLER_H_
#define TRANSFORMER_SERVING_SERVER_REQUEST_HANDLER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/model/marian_model.h"
#include "grpcpp/support/status.h"
#include "server/metrics.h"
#include "server/request_validation.h"
#include "server/scheduler.h"
#include "server/server_options.h"
#include "server/shared_translation.h"
#include "server/translate_call.h"
#include "server/translate_stream.h"
#include "server/translation_cache.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {

// Thread-safe; one per server, shared by the front ends. Translate looks each
// text up in the translation cache (--cache_mb; sampling requests without a
// seed skip it), joins identical texts in flight, and sends only the rest to
// the scheduler, with their text indices (which name their random streams).
class RequestHandler {
 public:
  // `scheduler` and `metrics` must outlive the handler.
  RequestHandler(std::shared_ptr<const core::MarianModel> model,
                 const ServerOptions& options, Scheduler* scheduler,
                 Metrics* metrics);

  // Translates request.texts; `response` must stay alive until `answer` has
  // run. Errors: as RequestValidator::ValidateTranslate (INVALID_ARGUMENT),
  // Scheduler::Submit (UNAVAILABLE), DEADLINE_EXCEEDED, CANCELLED.
  void Translate(const transformer::v1::TranslateRequest& request,
                 transformer::v1::TranslateResponse* response,
                 CallContext context, Answer answer);
  // Translate, streamed (the proto's TranslateStream): `write` gets each
  // text's messages while it is decoded (greedy and single-sample tokens as
  // they are chosen) and its last message, with the Translation that
  // Translate would return, when it is done (a cache hit at once); then
  // `answer` gets the status. Errors as Translate, through `answer` (an
  // invalid request before any message). Records
  // transformer_time_to_first_token_seconds per text.
  void TranslateStream(const transformer::v1::TranslateRequest& request,
                       CallContext context, StreamWrite write, Answer answer);
  // Encoder vectors of request.texts; errors as Translate.
  void Encode(const transformer::v1::EncodeRequest& request,
              transformer::v1::EncodeResponse* response, CallContext context,
              Answer answer);
  // The model's architecture, the defaults and the server's limits; answers
  // before returning.
  void GetModelInfo(transformer::v1::GetModelInfoResponse* response,
                    Answer answer);

  // A call that a front end refused before handing it here (the HTTP
  // gateway: a body that is not the request message in JSON, a bad
  // Grpc-Timeout, a body over --max_message_bytes): counted in
  // transformer_requests_total{method, code} and request_duration_seconds
  // as the calls answered here are. `method` is the RPC name ("Translate");
  // `duration` from receipt to refusal.
  void RecordRefusal(const char* method, grpc::StatusCode code,
                     absl::Duration duration);

  const RequestValidator& validator() const { return validator_; }
  const core::MarianModel& model() const { return *model_; }

 private:
  // Counts the call in flight; the returned Answer records its metrics under
  // `method` (the RPC name) and then calls `answer`.
  Answer Track(const char* method, Answer answer);
  // Translate and TranslateStream: fills `response` (unary), or sends each
  // text's output through `stream`; `finish` is the tracked answer.
  void RunTranslate(const transformer::v1::TranslateRequest& request,
                    transformer::v1::TranslateResponse* response,
                    std::shared_ptr<TranslateStreamOutput> stream,
                    CallContext context, Answer finish);

  // The scheduler's request for one sentence's shared computation: no
  // deadline of its own, dropped once `computation` is abandoned, and on its
  // end stored in the cache under `cache_key` (unless empty) and completed.
  // `streams`: forward each chosen token to the waiters.
  BatchRequest ComputationRequest(
      const core::TranslationOptions& options, int text_index,
      std::vector<int> source_ids, std::string cache_key,
      std::shared_ptr<SharedTranslation> computation, bool streams);

  std::shared_ptr<const core::MarianModel> model_;
  RequestValidator validator_;
  Scheduler* const scheduler_;
  Metrics* const metrics_;
  // Model folder and compute type: part of every cache key.
  const std::string model_identity_;
  std::unique_ptr<TranslationCache> cache_;  // null when --cache_mb is 0
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_REQUEST_HANDLER_H_
