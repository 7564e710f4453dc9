#include "server/request_handler.h"

#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/decoding/sampling.h"
#include "server/model_languages.h"

namespace ts::server {

RequestHandler::RequestHandler(std::shared_ptr<const core::MarianModel> model,
                               const ServerOptions& options,
                               Scheduler* scheduler, Metrics* metrics)
    : model_(model),
      validator_(
          std::move(model),
          RequestLimits{
              .max_texts_per_request = options.max_texts_per_request,
              .max_queue_size = options.max_queue_size,
              .max_input_tokens = options.max_input_tokens,
              .max_text_bytes = options.max_text_bytes,
              .max_length_cap = options.max_length_cap,
              .max_beam_size = options.max_beam_size,
              .max_length_factor = options.max_length_factor,
              .max_sentences_per_request = options.max_sentences_per_request},
          ReadModelLanguages(options.model_dir).source),
      scheduler_(scheduler),
      metrics_(metrics),
      model_identity_(
          absl::StrCat(options.model_dir, "|", options.compute_type)) {
  if (options.cache_mb > 0) {
    cache_ = std::make_unique<TranslationCache>(
        int64_t{options.cache_mb} << 20,
        [metrics](int64_t bytes) { metrics->SetCacheBytes(bytes); });
  }
}

Answer RequestHandler::Track(const char* method, Answer answer) {
  metrics_->IncrementInflight();
  return [metrics = metrics_, method, start = absl::Now(),
          answer = std::move(answer)](const grpc::Status& status) {
    metrics->RecordRequest(method, status.error_code(), absl::Now() - start);
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
  RunTranslate(request, response, nullptr, std::move(context),
               Track("Translate", std::move(answer)));
}

void RequestHandler::TranslateStream(
    const transformer::v1::TranslateRequest& request, CallContext context,
    StreamWrite write, Answer answer) {
  const absl::Time accepted = absl::Now();
  Answer finish = Track("TranslateStream", std::move(answer));
  auto stream = std::make_shared<TranslateStreamOutput>(
      std::move(write), model_->tokenizer(), metrics_, accepted);
  RunTranslate(request, nullptr, std::move(stream), std::move(context),
               std::move(finish));
}

void RequestHandler::RunTranslate(
    const transformer::v1::TranslateRequest& request,
    transformer::v1::TranslateResponse* response,
    std::shared_ptr<TranslateStreamOutput> stream, CallContext context,
    Answer finish) {
  // 1. Validate: limits, options, sentences, tokens.
  TranslateWork work;
  const absl::Time validation_start = absl::Now();
  if (grpc::Status status = validator_.ValidateTranslate(request, &work);
      !status.ok()) {
    finish(status);
    return;
  }
  metrics_->RecordSegmentation(absl::Now() - validation_start);
  const char* const format_name =
      work.input_format == transformer::v1::INPUT_FORMAT_HTML       ? "html"
      : work.input_format == transformer::v1::INPUT_FORMAT_SENTENCE ? "sentence"
                                                                    : "text";
  for (const TextWork& text : work.texts) {
    metrics_->RecordText(format_name, static_cast<int>(text.segments.size()));
  }
  // As the scheduler would answer them: cache hits must not slip past a
  // drain or a deadline that has already passed.
  if (!scheduler_->accepting()) {
    finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "server is shutting down and accepts no new requests"));
    return;
  }
  if (context.deadline <= absl::Now()) {
    finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "deadline passed before the call was served"));
    return;
  }
  const core::TranslationOptions options = work.options;
  std::vector<std::string> texts(request.texts().begin(),
                                 request.texts().end());
  auto call = std::make_shared<TranslateCall>(
      std::move(texts), std::move(work), std::move(context), response,
      std::move(stream), std::move(finish), model_->tokenizer(), metrics_);

  // 2. Look each sentence up in the cache (a hit settles at once; an
  // identical computation in flight takes this call as one more waiter) or
  // start its computation. Sampling without a seed gets a fresh one: its
  // result can never repeat. Attention weights are not cached (large, and
  // rarely asked twice).
  const bool use_cache = cache_ != nullptr && !options.return_attention &&
                         (!options.do_sample || request.options().has_seed());
  // Greedy search and one sample stream their tokens; beam search and
  // several samples send each text's last message only.
  const bool streams = options.beam_size <= 1 && options.num_hypotheses <= 1;
  std::vector<BatchRequest> batch_requests;
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
        key = TranslationCacheKey(model_identity_, segment_options, t,
                                  segment.source);
        core::TranslationResult hit;
        const TranslationCache::Lookup lookup =
            cache_->Find(key, std::move(waiter), &hit, &computation);
        if (lookup == TranslationCache::Lookup::kHit) {
          metrics_->RecordCacheHit();
          call->Settle(t, s, absl::OkStatus(), hit);
          continue;
        }
        if (lookup == TranslationCache::Lookup::kPending) {
          metrics_->RecordCacheHit();
          continue;
        }
        metrics_->RecordCacheMiss();
      } else {
        computation = std::make_shared<SharedTranslation>();
        computation->Attach(std::move(waiter));
      }
      batch_requests.push_back(
          ComputationRequest(segment_options, t, segment.source_ids,
                             std::move(key), std::move(computation), streams));
    }
  }

  // 3. Queue the new computations, all or none; a refusal ends them, for
  // every waiter they have.
  if (!batch_requests.empty()) {
    std::vector<CompletionCallback> ends;
    ends.reserve(batch_requests.size());
    for (const BatchRequest& batch_request : batch_requests) {
      ends.push_back(batch_request.on_done);
    }
    if (absl::Status submitted =
            scheduler_->SubmitAll(std::move(batch_requests));
        !submitted.ok()) {
      for (CompletionCallback& end : ends) end(submitted, {});
    }
  }
  // 4. Assemble: the last sentence's outcome answers the call.
  call->SetUpDone();
}

BatchRequest RequestHandler::ComputationRequest(
    const core::TranslationOptions& options, int text_index,
    std::vector<int> source_ids, std::string cache_key,
    std::shared_ptr<SharedTranslation> computation, bool streams) {
  BatchRequest batch_request;
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
  Answer finish = Track("Encode", std::move(answer));
  EncodeWork work;
  if (grpc::Status status = validator_.ValidateEncode(request, &work);
      !status.ok()) {
    finish(status);
    return;
  }
  BatchRequest batch_request;
  batch_request.key.method = Method::kEncode;
  batch_request.key.encode = work.options;
  batch_request.source_ids = std::move(work.source_ids);
  batch_request.deadline = context.deadline;
  batch_request.is_cancelled = std::move(context.is_cancelled);
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
  if (absl::Status submitted = scheduler_->Submit(std::move(batch_request));
      !submitted.ok()) {
    finish(ToGrpcStatus(submitted));
  }
}

void RequestHandler::GetModelInfo(
    transformer::v1::GetModelInfoResponse* response, Answer answer) {
  Answer finish = Track("GetModelInfo", std::move(answer));
  const core::ModelConfig& config = model_->config();
  const core::TranslationOptions defaults =
      validator_.DefaultTranslationOptions();
  const RequestLimits& limits = validator_.limits();
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
  response->set_max_sentences_per_request(limits.max_sentences_per_request);
  finish(grpc::Status::OK);
}

}  // namespace ts::server
