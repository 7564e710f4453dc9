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
#include "grpcpp/support/status.h"
#include "server/loaded_model.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/request_validation.h"
#include "server/scheduler.h"
#include "server/server_options.h"
#include "server/shared_translation.h"
#include "server/translate_call.h"
#include "server/translate_stream.h"
#include "server/translation_cache.h"
#include "transformer/v1/transformer_service.pb.h"

namespace ts::server {

// The request limits the flags set, for every model's RequestValidator.
RequestLimits RequestLimitsFromOptions(const ServerOptions& options);

// Thread-safe; one per server, shared by the front ends. Every call first
// resolves its model (TranslateRequest.model, or its language pair, or the
// default model; a pivot pair runs two models in turn) and leases it from
// the registry (loading it if needed, off the caller's thread). Translate
// then looks each sentence up in the translation cache (--cache_mb;
// sampling requests without a seed skip it), joins identical sentences in
// flight, and sends only the rest to the scheduler, with their text indices
// (which name their random streams).
class RequestHandler {
 public:
  // `registry`, `scheduler` and `metrics` must outlive the handler.
  RequestHandler(ModelRegistry* registry, const ServerOptions& options,
                 Scheduler* scheduler, Metrics* metrics);

  // Translates request.texts; `request` and `response` must stay alive
  // until `answer` has run. Errors: NOT_FOUND (unknown model or pair,
  // naming what is served), RESOURCE_EXHAUSTED (a model larger than
  // --model_memory_mb), as RequestValidator::ValidateTranslate
  // (INVALID_ARGUMENT), Scheduler::Submit (UNAVAILABLE), DEADLINE_EXCEEDED,
  // CANCELLED.
  void Translate(const transformer::v1::TranslateRequest& request,
                 transformer::v1::TranslateResponse* response,
                 CallContext context, Answer answer);
  // Translate, streamed (the proto's TranslateStream): `write` gets each
  // text's messages while it is decoded (greedy and single-sample tokens as
  // they are chosen) and its last message, with the Translation that
  // Translate would return, when it is done (a cache hit at once); then
  // `answer` gets the status. A pivot translation streams its second
  // model's tokens. Errors as Translate, through `answer` (an invalid
  // request before any message). Records
  // transformer_time_to_first_token_seconds per text.
  void TranslateStream(const transformer::v1::TranslateRequest& request,
                       CallContext context, StreamWrite write, Answer answer);
  // Encoder vectors of request.texts (one model: no pivot); errors as
  // Translate.
  void Encode(const transformer::v1::EncodeRequest& request,
              transformer::v1::EncodeResponse* response, CallContext context,
              Answer answer);
  // The architecture, defaults and limits of request.model (default: the
  // default model), loading it if needed. Errors: NOT_FOUND, as Acquire.
  void GetModelInfo(const transformer::v1::GetModelInfoRequest& request,
                    transformer::v1::GetModelInfoResponse* response,
                    CallContext context, Answer answer);
  // The repository's models (ModelRegistry::List); answers before
  // returning.
  void ListModels(transformer::v1::ListModelsResponse* response, Answer answer);
  // Loads request.name (ModelRegistry::Acquire) and answers with its
  // status once READY. Errors: NOT_FOUND, RESOURCE_EXHAUSTED,
  // DEADLINE_EXCEEDED, the load's error.
  void LoadModel(const transformer::v1::LoadModelRequest& request,
                 transformer::v1::LoadModelResponse* response,
                 CallContext context, Answer answer);
  // Unloads request.name (ModelRegistry::Unload); answers before returning.
  // Errors: NOT_FOUND.
  void UnloadModel(const transformer::v1::UnloadModelRequest& request,
                   transformer::v1::UnloadModelResponse* response,
                   Answer answer);

  // A call that a front end refused before handing it here (the HTTP
  // gateway: a body that is not the request message in JSON, a bad
  // Grpc-Timeout, a body over --max_message_bytes): counted in
  // transformer_requests_total{method, code} and request_duration_seconds
  // as the calls answered here are. `method` is the RPC name ("Translate");
  // `duration` from receipt to refusal.
  void RecordRefusal(const char* method, grpc::StatusCode code,
                     absl::Duration duration);

  ModelRegistry& registry() const { return *registry_; }
  const RequestLimits& limits() const { return limits_; }

 private:
  // Counts the call in flight; the returned Answer records its metrics under
  // `method` (the RPC name) and `*model` (set once the model is known) and
  // then calls `answer`.
  Answer Track(const char* method, std::shared_ptr<std::string> model,
               Answer answer);
  // Translate and TranslateStream: resolves the route, then runs it. Unary
  // fills `response`; a stream sends through `write`.
  void RunTranslate(const transformer::v1::TranslateRequest& request,
                    transformer::v1::TranslateResponse* response,
                    StreamWrite write, absl::Time accepted, CallContext context,
                    std::shared_ptr<std::string> label, Answer finish);
  // Runs `request` on the leased model of `hop`; `models` is what
  // Translation.models reports.
  void TranslateOn(std::shared_ptr<const ModelLease> lease, const RouteHop& hop,
                   const transformer::v1::TranslateRequest& request,
                   transformer::v1::TranslateResponse* response,
                   StreamWrite write, absl::Time accepted, CallContext context,
                   std::vector<std::string> models, Answer finish);
  // The steps of TranslateOn. Validates `request` against the model's
  // limits, splits its texts into sentences and tokenizes them into `work`
  // (with hop's >>xxx<< token). Errors: INVALID_ARGUMENT naming the limit.
  grpc::Status ValidateAndSegment(
      const LoadedModel& loaded, const RouteHop& hop,
      const transformer::v1::TranslateRequest& request,
      TranslateWork* work) const;
  // UNAVAILABLE while draining, DEADLINE_EXCEEDED past `deadline`.
  grpc::Status CheckStillServable(absl::Time deadline) const;
  // Looks each sentence of `call` up in the translation cache: hits settle
  // at once, identical computations in flight get `call` as a waiter.
  // Returns the computations to start. `has_seed`: the request gave a
  // sampling seed (unseeded samples are never cached).
  std::vector<BatchRequest> LookUpCache(
      const std::shared_ptr<TranslateCall>& call,
      const std::shared_ptr<const ModelLease>& lease, const RouteHop& hop,
      bool has_seed);
  // Submits `computations` to the scheduler, all or none; a refusal ends
  // each of them with its status.
  void Queue(std::vector<BatchRequest> computations);
  // A pivot: the texts through hops[0] (best hypothesis only), then that
  // output through hops[1].
  void RunPivot(const transformer::v1::TranslateRequest& request,
                transformer::v1::TranslateResponse* response, StreamWrite write,
                absl::Time accepted, CallContext context,
                std::vector<RouteHop> hops, Answer finish);

  // The scheduler's request for one sentence's shared computation: no
  // deadline of its own, dropped once `computation` is abandoned, and on its
  // end stored in the cache under `cache_key` (unless empty) and completed.
  // `streams`: forward each chosen token to the waiters.
  BatchRequest ComputationRequest(
      std::shared_ptr<const ModelLease> lease,
      const core::TranslationOptions& options, int text_index,
      std::vector<int> source_ids, std::string cache_key,
      std::shared_ptr<SharedTranslation> computation, bool streams);

  ModelRegistry* const registry_;
  const RequestLimits limits_;
  Scheduler* const scheduler_;
  Metrics* const metrics_;
  std::unique_ptr<TranslationCache> cache_;  // null when --cache_mb is 0
};

}  // namespace ts::server

#endif  // TRANSFORMER_SERVING_SERVER_REQUEST_HANDLER_H_
