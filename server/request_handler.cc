#include "server/request_handler.h"

#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/decoding/sampling.h"
#include "google/protobuf/util/time_util.h"
#include "server/model_status.h"

namespace ts::server {
namespace {}  // namespace

RequestLimits RequestLimitsFromOptions(const ServerOptions& options) {
  return RequestLimits{
      .max_texts_per_request = options.max_texts_per_request,
      .max_queue_size = options.max_queue_size,
      .max_input_tokens = options.max_input_tokens,
      .max_text_bytes = options.max_text_bytes,
      .max_length_cap = options.max_length_cap,
      .max_beam_size = options.max_beam_size,
      .max_length_factor = options.max_length_factor,
      .max_sentences_per_request = options.max_sentences_per_request};
}

namespace {

// A multi-target model's >>xxx<< token goes before every sentence.
grpc::Status PrefixTargetToken(const core::MarianTokenizer& tokenizer,
                               const std::string& token, TranslateWork* work) {
  if (token.empty()) return grpc::Status::OK;
  absl::StatusOr<std::vector<int>> ids = tokenizer.EncodeSource(token);
  if (!ids.ok() || ids->size() != 2) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("target token ", token,
                                     " is not one piece of the vocabulary"));
  }
  for (TextWork& text : work->texts) {
    for (SegmentWork& segment : text.segments) {
      segment.source_ids.insert(segment.source_ids.begin(), (*ids)[0]);
    }
  }
  return grpc::Status::OK;
}

}  // namespace

RequestHandler::RequestHandler(ModelRegistry* registry,
                               const ServerOptions& options,
                               Scheduler* scheduler, Metrics* metrics)
    : registry_(registry),
      limits_(RequestLimitsFromOptions(options)),
      scheduler_(scheduler),
      metrics_(metrics) {
  if (options.cache_mb > 0) {
    cache_ = std::make_unique<TranslationCache>(
        int64_t{options.cache_mb} << 20,
        [metrics](int64_t bytes) { metrics->SetCacheBytes(bytes); });
  }
}

Answer RequestHandler::Track(const char* method,
                             std::shared_ptr<std::string> model,
                             Answer answer) {
  metrics_->IncrementInflight();
  return [metrics = metrics_, method, model = std::move(model),
          start = absl::Now(),
          answer = std::move(answer)](const grpc::Status& status) {
    metrics->RecordRequest(method, status.error_code(), absl::Now() - start,
                           *model);
    metrics->DecrementInflight();
    answer(status);
  };
}

void RequestHandler::RecordRefusal(const char* method, grpc::StatusCode code,
                                   absl::Duration duration) {
  metrics_->RecordRequest(method, code, duration);
}

void RequestHandler::Translate(const transformer::v1::TranslateRequest& request,
                               transformer::v1::TranslateResponse* response,
                               CallContext context, Answer answer) {
  auto label = std::make_shared<std::string>();
  Answer finish = Track("Translate", label, std::move(answer));
  RunTranslate(request, response, nullptr, absl::Now(), std::move(context),
               std::move(label), std::move(finish));
}

void RequestHandler::TranslateStream(
    const transformer::v1::TranslateRequest& request, CallContext context,
    StreamWrite write, Answer answer) {
  const absl::Time accepted = absl::Now();
  auto label = std::make_shared<std::string>();
  Answer finish = Track("TranslateStream", label, std::move(answer));
  RunTranslate(request, nullptr, std::move(write), accepted, std::move(context),
               std::move(label), std::move(finish));
}

void RequestHandler::RunTranslate(
    const transformer::v1::TranslateRequest& request,
    transformer::v1::TranslateResponse* response, StreamWrite write,
    absl::Time accepted, CallContext context,
    std::shared_ptr<std::string> label, Answer finish) {
  // 1. Resolve the model: by name, by language pair (maybe through the
  // pivot language), or the default.
  absl::StatusOr<std::vector<RouteHop>> hops =
      registry_->Resolve(request.model(), request.source_language(),
                         request.target_language(), /*allow_pivot=*/true);
  if (!hops.ok()) {
    finish(ToGrpcStatus(hops.status()));
    return;
  }
  std::vector<std::string> names;
  for (const RouteHop& hop : *hops) names.push_back(hop.model);
  *label = absl::StrJoin(names, "+");
  if (hops->size() == 2) {
    RunPivot(request, response, std::move(write), accepted, std::move(context),
             *std::move(hops), std::move(finish));
    return;
  }
  // 2. Lease it (loading it first if needed, off this thread).
  const RouteHop hop = hops->front();
  registry_->Acquire(
      hop.model, context.deadline, context.is_cancelled,
      [this, hop, &request, response, write = std::move(write), accepted,
       context, names = std::move(names),
       finish](absl::StatusOr<std::shared_ptr<const ModelLease>> lease) {
        if (!lease.ok()) {
          finish(ToGrpcStatus(lease.status()));
          return;
        }
        TranslateOn(*std::move(lease), hop, request, response, std::move(write),
                    accepted, std::move(context), std::move(names),
                    std::move(finish));
      });
}

void RequestHandler::RunPivot(const transformer::v1::TranslateRequest& request,
                              transformer::v1::TranslateResponse* response,
                              StreamWrite write, absl::Time accepted,
                              CallContext context, std::vector<RouteHop> hops,
                              Answer finish) {
  // The first leg translates into the pivot language: the best hypothesis
  // only, no attention; markup and layout carry through (HTML stays HTML).
  auto first = std::make_shared<transformer::v1::TranslateRequest>(request);
  first->clear_model();
  first->clear_source_language();
  first->clear_target_language();
  first->mutable_options()->set_num_hypotheses(1);
  first->mutable_options()->set_return_attention(false);
  auto first_response = std::make_shared<transformer::v1::TranslateResponse>();
  // The second leg's request, filled when the first ends.
  auto second = std::make_shared<transformer::v1::TranslateRequest>(request);
  second->clear_texts();
  const std::vector<std::string> names = {hops[0].model, hops[1].model};
  Answer after_first = [this, first, first_response, second, hops, response,
                        write = std::move(write), accepted, context, names,
                        finish](const grpc::Status& status) {
    if (!status.ok()) {
      finish(status);
      return;
    }
    for (const transformer::v1::Translation& translation :
         first_response->translations()) {
      second->add_texts(translation.hypotheses(0).text());
    }
    registry_->Acquire(
        hops[1].model, context.deadline, context.is_cancelled,
        [this, second, hop = hops[1], response, write, accepted, context, names,
         finish](absl::StatusOr<std::shared_ptr<const ModelLease>> lease) {
          if (!lease.ok()) {
            finish(ToGrpcStatus(lease.status()));
            return;
          }
          // The request lives until the answer.
          Answer keep = [second, finish](const grpc::Status& status) {
            finish(status);
          };
          TranslateOn(*std::move(lease), hop, *second, response, write,
                      accepted, context, names, std::move(keep));
        });
  };
  registry_->Acquire(
      hops[0].model, context.deadline, context.is_cancelled,
      [this, first, first_response, hop = hops[0], context,
       after_first = std::move(after_first)](
          absl::StatusOr<std::shared_ptr<const ModelLease>> lease) {
        if (!lease.ok()) {
          after_first(ToGrpcStatus(lease.status()));
          return;
        }
        TranslateOn(*std::move(lease), hop, *first, first_response.get(),
                    nullptr, absl::Now(), context, {hop.model}, after_first);
      });
}

void RequestHandler::TranslateOn(
    std::shared_ptr<const ModelLease> lease, const RouteHop& hop,
    const transformer::v1::TranslateRequest& request,
    transformer::v1::TranslateResponse* response, StreamWrite write,
    absl::Time accepted, CallContext context, std::vector<std::string> models,
    Answer finish) {
  const LoadedModel& loaded = lease->loaded();
  // 3. Validate and segment.
  TranslateWork work;
  if (grpc::Status status = ValidateAndSegment(loaded, hop, request, &work);
      !status.ok()) {
    finish(status);
    return;
  }
  if (grpc::Status status = CheckStillServable(context.deadline);
      !status.ok()) {
    finish(status);
    return;
  }
  std::vector<std::string> texts(request.texts().begin(),
                                 request.texts().end());
  std::shared_ptr<TranslateStreamOutput> stream;
  if (write) {
    stream = std::make_shared<TranslateStreamOutput>(
        std::move(write), loaded.model().tokenizer(), metrics_, accepted);
  }
  auto call = std::make_shared<TranslateCall>(
      std::move(texts), std::move(work), std::move(context), response,
      std::move(stream), std::move(finish), lease, std::move(models), metrics_);
  // 4. Look up the cache; 5. queue what it lacks; 6. assemble: the last
  // sentence's outcome answers the call.
  Queue(LookUpCache(call, lease, hop, request.options().has_seed()));
  call->SetUpDone();
}

grpc::Status RequestHandler::ValidateAndSegment(
    const LoadedModel& loaded, const RouteHop& hop,
    const transformer::v1::TranslateRequest& request,
    TranslateWork* work) const {
  const absl::Time start = absl::Now();
  // A multi-target model's >>xxx<< token takes one of the sentence's tokens.
  const int reserved_tokens = hop.target_token.empty() ? 0 : 1;
  if (grpc::Status status =
          loaded.validator().ValidateTranslate(request, work, reserved_tokens);
      !status.ok()) {
    return status;
  }
  if (grpc::Status status =
          PrefixTargetToken(loaded.model().tokenizer(), hop.target_token, work);
      !status.ok()) {
    return status;
  }
  metrics_->RecordSegmentation(absl::Now() - start);
  const char* const format_name =
      work->input_format == transformer::v1::INPUT_FORMAT_HTML ? "html"
      : work->input_format == transformer::v1::INPUT_FORMAT_SENTENCE
          ? "sentence"
          : "text";
  for (const TextWork& text : work->texts) {
    metrics_->RecordText(format_name, static_cast<int>(text.segments.size()));
  }
  return grpc::Status::OK;
}

grpc::Status RequestHandler::CheckStillServable(absl::Time deadline) const {
  // As the scheduler would answer them: cache hits must not slip past a
  // drain or a deadline that has already passed.
  if (!scheduler_->accepting()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "server is shutting down and accepts no new requests");
  }
  if (deadline <= absl::Now()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "deadline passed before the call was served");
  }
  return grpc::Status::OK;
}

std::vector<BatchRequest> RequestHandler::LookUpCache(
    const std::shared_ptr<TranslateCall>& call,
    const std::shared_ptr<const ModelLease>& lease, const RouteHop& hop,
    bool has_seed) {
  const LoadedModel& loaded = lease->loaded();
  const core::TranslationOptions& options = call->work().options;
  // The cache keys a result by model folder, compute type and target token.
  const std::string identity =
      absl::StrCat(loaded.cache_identity(), "|", hop.target_token);
  // A hit settles at once; an identical computation in flight takes this
  // call as one more waiter; else a computation starts. Sampling without a
  // seed gets a fresh one: its result can never repeat. Attention weights
  // are not cached (large, and rarely asked twice).
  const bool use_cache = cache_ != nullptr && !options.return_attention &&
                         (!options.do_sample || has_seed);
  // Greedy search and one sample stream their tokens; beam search and
  // several samples send each text's last message only.
  const bool streams = options.beam_size <= 1 && options.num_hypotheses <= 1;
  std::vector<BatchRequest> computations;
  for (int t = 0; t < static_cast<int>(call->work().texts.size()); ++t) {
    const std::vector<SegmentWork>& segments = call->work().texts[t].segments;
    for (int s = 0; s < static_cast<int>(segments.size()); ++s) {
      const SegmentWork& segment = segments[s];
      // A sentence's random streams: the text's for a one-sentence text (as
      // before documents), else one derived per sentence.
      core::TranslationOptions segment_options = options;
      if (options.do_sample && segments.size() > 1) {
        segment_options.seed = core::SampleStreamKey({options.seed, t}, -1 - s);
      }
      // HTML carries its markup over through the cross-attention alignment,
      // so its sentences record attention (returned only if asked), which
      // the cache does not store.
      const bool html = call->work().texts[t].html != nullptr;
      if (html) segment_options.return_attention = true;
      SharedTranslation::Waiter waiter =
          TranslateCall::WaiterFor(call, t, s, streams);
      std::string key;
      std::shared_ptr<SharedTranslation> computation;
      if (use_cache && !html) {
        key = TranslationCacheKey(identity, segment_options, t, segment.source);
        core::TranslationResult hit;
        const TranslationCache::Lookup lookup =
            cache_->Find(key, std::move(waiter), &hit, &computation);
        if (lookup == TranslationCache::Lookup::kHit) {
          metrics_->RecordCacheHit(loaded.name());
          call->Settle(t, s, absl::OkStatus(), hit);
          continue;
        }
        if (lookup == TranslationCache::Lookup::kPending) {
          metrics_->RecordCacheHit(loaded.name());
          continue;
        }
        metrics_->RecordCacheMiss(loaded.name());
      } else {
        computation = std::make_shared<SharedTranslation>();
        computation->Attach(std::move(waiter));
      }
      computations.push_back(
          ComputationRequest(lease, segment_options, t, segment.source_ids,
                             std::move(key), std::move(computation), streams));
    }
  }
  return computations;
}

void RequestHandler::Queue(std::vector<BatchRequest> computations) {
  if (computations.empty()) return;
  // All or none; a refusal ends them, for every waiter they have.
  std::vector<CompletionCallback> ends;
  ends.reserve(computations.size());
  for (const BatchRequest& computation : computations) {
    ends.push_back(computation.on_done);
  }
  if (absl::Status submitted = scheduler_->SubmitAll(std::move(computations));
      !submitted.ok()) {
    for (CompletionCallback& end : ends) end(submitted, {});
  }
}

BatchRequest RequestHandler::ComputationRequest(
    std::shared_ptr<const ModelLease> lease,
    const core::TranslationOptions& options, int text_index,
    std::vector<int> source_ids, std::string cache_key,
    std::shared_ptr<SharedTranslation> computation, bool streams) {
  BatchRequest batch_request;
  batch_request.key.model = &lease->loaded();
  batch_request.model = std::move(lease);
  batch_request.key.method = Method::kTranslate;
  batch_request.key.translation = options;
  // The seed travels per sentence, so requests with other seeds can share
  // a batch.
  batch_request.key.translation.seed = 0;
  batch_request.sample_seed = options.seed;
  batch_request.text_indices = {text_index};  // names its random streams
  batch_request.source_ids.push_back(std::move(source_ids));
  // The computation belongs to none of its waiters: no deadline of its own,
  // and it is dropped only once every waiter has left (each one detaches at
  // its own cancel or deadline).
  batch_request.deadline = absl::InfiniteFuture();
  batch_request.is_cancelled = [computation] {
    return computation->Abandoned();
  };
  // Ends the computation: the cache stores it (or forgets the failure) and
  // every waiter still attached gets the same outcome.
  batch_request.on_done = [cache = cache_.get(), key = std::move(cache_key),
                           computation](absl::Status status,
                                        std::vector<SentenceResult> results) {
    const core::TranslationResult none;
    const core::TranslationResult& result =
        status.ok() ? std::get<core::TranslationResult>(results[0]) : none;
    if (!key.empty()) cache->Finish(key, computation.get(), status, result);
    computation->Complete(status, result);
  };
  if (streams) {
    batch_request.on_token = [computation](int /*index*/, int token) {
      computation->Token(token);
    };
  }
  return batch_request;
}

void RequestHandler::Encode(const transformer::v1::EncodeRequest& request,
                            transformer::v1::EncodeResponse* response,
                            CallContext context, Answer answer) {
  auto label = std::make_shared<std::string>();
  Answer finish = Track("Encode", label, std::move(answer));
  absl::StatusOr<std::vector<RouteHop>> hops =
      registry_->Resolve(request.model(), request.source_language(),
                         request.target_language(), /*allow_pivot=*/false);
  if (!hops.ok()) {
    finish(ToGrpcStatus(hops.status()));
    return;
  }
  *label = hops->front().model;
  registry_->Acquire(
      hops->front().model, context.deadline, context.is_cancelled,
      [this, &request, response, context,
       finish](absl::StatusOr<std::shared_ptr<const ModelLease>> lease) {
        if (!lease.ok()) {
          finish(ToGrpcStatus(lease.status()));
          return;
        }
        EncodeWork work;
        if (grpc::Status status =
                (*lease)->loaded().validator().ValidateEncode(request, &work);
            !status.ok()) {
          finish(status);
          return;
        }
        BatchRequest batch_request;
        batch_request.key.model = &(*lease)->loaded();
        batch_request.model = *std::move(lease);
        batch_request.key.method = Method::kEncode;
        batch_request.key.encode = work.options;
        batch_request.source_ids = std::move(work.source_ids);
        batch_request.deadline = context.deadline;
        batch_request.is_cancelled = context.is_cancelled;
        batch_request.on_done = [response, finish](
                                    absl::Status status,
                                    std::vector<SentenceResult> results) {
          if (!status.ok()) {
            finish(ToGrpcStatus(status));
            return;
          }
          for (SentenceResult& result : results) {
            core::EncodeResult& encoded = std::get<core::EncodeResult>(result);
            transformer::v1::Embedding* embedding = response->add_embeddings();
            embedding->set_dim(encoded.dim);
            embedding->set_num_tokens(encoded.num_tokens);
            embedding->mutable_values()->Add(encoded.values.begin(),
                                             encoded.values.end());
          }
          finish(grpc::Status::OK);
        };
        if (absl::Status submitted =
                scheduler_->Submit(std::move(batch_request));
            !submitted.ok()) {
          finish(ToGrpcStatus(submitted));
        }
      });
}

void RequestHandler::GetModelInfo(
    const transformer::v1::GetModelInfoRequest& request,
    transformer::v1::GetModelInfoResponse* response, CallContext context,
    Answer answer) {
  auto label = std::make_shared<std::string>();
  Answer finish = Track("GetModelInfo", label, std::move(answer));
  absl::StatusOr<std::vector<RouteHop>> hops =
      registry_->Resolve(request.model(), "", "", /*allow_pivot=*/false);
  if (!hops.ok()) {
    finish(ToGrpcStatus(hops.status()));
    return;
  }
  *label = hops->front().model;
  registry_->Acquire(
      hops->front().model, context.deadline, context.is_cancelled,
      [this, response,
       finish](absl::StatusOr<std::shared_ptr<const ModelLease>> lease) {
        if (!lease.ok()) {
          finish(ToGrpcStatus(lease.status()));
          return;
        }
        const LoadedModel& loaded = (*lease)->loaded();
        const core::ModelConfig& config = loaded.model().config();
        const core::TranslationOptions defaults =
            loaded.validator().DefaultTranslationOptions();
        const RequestLimits& limits = loaded.validator().limits();
        response->set_model_name(config.name);
        response->set_d_model(config.d_model);
        response->set_encoder_layers(config.encoder_layers);
        response->set_decoder_layers(config.decoder_layers);
        response->set_encoder_attention_heads(config.encoder_attention_heads);
        response->set_decoder_attention_heads(config.decoder_attention_heads);
        response->set_vocab_size(config.vocab_size);
        response->set_default_beam_size(defaults.beam_size);
        response->set_default_max_length(defaults.max_length);
        response->set_max_length_cap(limits.max_length_cap);
        response->set_max_texts_per_request(limits.max_texts_per_request);
        response->set_max_input_tokens(limits.max_input_tokens);
        response->set_max_text_bytes(limits.max_text_bytes);
        response->set_max_sentences_per_request(
            limits.max_sentences_per_request);
        if (absl::StatusOr<ModelInfo> info = registry_->Info(loaded.name());
            info.ok()) {
          *response->mutable_model() = ModelStatusProto(*info);
        }
        finish(grpc::Status::OK);
      });
}

void RequestHandler::ListModels(transformer::v1::ListModelsResponse* response,
                                Answer answer) {
  Answer finish =
      Track("ListModels", std::make_shared<std::string>(), std::move(answer));
  for (const ModelInfo& info : registry_->List()) {
    *response->add_models() = ModelStatusProto(info);
  }
  response->set_memory_budget_bytes(registry_->memory_budget_bytes());
  response->set_resident_weight_bytes(registry_->resident_bytes());
  finish(grpc::Status::OK);
}

void RequestHandler::LoadModel(const transformer::v1::LoadModelRequest& request,
                               transformer::v1::LoadModelResponse* response,
                               CallContext context, Answer answer) {
  auto label = std::make_shared<std::string>();
  Answer finish = Track("LoadModel", label, std::move(answer));
  const std::string name = request.name();
  if (registry_->Info(name).ok()) *label = name;
  registry_->Acquire(
      name, context.deadline, context.is_cancelled,
      [this, name, response,
       finish](absl::StatusOr<std::shared_ptr<const ModelLease>> lease) {
        if (!lease.ok()) {
          finish(ToGrpcStatus(lease.status()));
          return;
        }
        lease->reset();  // loaded; it stays until evicted or unloaded
        absl::StatusOr<ModelInfo> info = registry_->Info(name);
        if (info.ok()) *response->mutable_model() = ModelStatusProto(*info);
        finish(ToGrpcStatus(info.status()));
      });
}

void RequestHandler::UnloadModel(
    const transformer::v1::UnloadModelRequest& request,
    transformer::v1::UnloadModelResponse* response, Answer answer) {
  auto label = std::make_shared<std::string>();
  Answer finish = Track("UnloadModel", label, std::move(answer));
  absl::StatusOr<ModelInfo> info = registry_->Unload(request.name());
  if (info.ok()) {
    *label = request.name();
    *response->mutable_model() = ModelStatusProto(*info);
  }
  finish(ToGrpcStatus(info.status()));
}

}  // namespace ts::server
